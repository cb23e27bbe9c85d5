# A kazoo 2.8 session over TLS with client certificates, as zoo's TLS test
# and a real ZooKeeper 3.8 both run it: the two outputs must be identical.
#
#   python3 tls_kazoo.py SECURE_HOSTS PLAIN_HOSTS CA APP_PEM OTHER_PEM
#
# APP_PEM and OTHER_PEM hold a key and certificate each (zoo certs' format);
# their subjects are CN=app,O=zoo and CN=other,O=zoo. Only the result lines
# (on stdout) are compared: kazoo logs to stderr in its own time.
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import ACL, Id, Permissions

secure, plain, ca, app_pem, other_pem = sys.argv[1:6]


def connect(hosts, pem=None):
    if pem is None and hosts == plain:
        zk = KazooClient(hosts=hosts, timeout=20)
    else:
        # kazoo sends no certificate unless keyfile is given too.
        zk = KazooClient(hosts=hosts, timeout=20, use_ssl=True, ca=ca, certfile=pem, keyfile=pem, verify_certs=True)
    zk.start(timeout=30)
    return zk


def attempt(what, fn):
    try:
        r = fn()
        print(what, "->", r)
    except KazooException as e:
        print(what, "->", type(e).__name__)


app, other, anon = connect(secure, app_pem), connect(secure, other_pem), connect(plain)
base = "/tls-kazoo"
x509 = [ACL(Permissions.ALL, Id("x509", "CN=app,O=zoo"))]
attempt("create base", lambda: app.create(base, b"", acl=x509 + [ACL(Permissions.READ, Id("world", "anyone"))]) and "ok")
attempt("create secret", lambda: app.create(base + "/secret", b"s3cret", acl=x509) and "ok")
attempt("app get", lambda: app.get(base + "/secret")[0])
attempt("app acl", lambda: [(a.perms, a.id.scheme, a.id.id) for a in app.get_acls(base + "/secret")[0]])
attempt("other get", lambda: other.get(base + "/secret")[0])
attempt("other set", lambda: other.set(base + "/secret", b"x") and "ok")
attempt("other lists base", lambda: other.get_children(base))
attempt("plain get", lambda: anon.get(base + "/secret")[0])
attempt("plain delete", lambda: anon.delete(base + "/secret") or "ok")
attempt("create mine with auth", lambda: app.create(base + "/mine", b"", acl=[ACL(Permissions.ALL, Id("auth", "anything"))]) and "ok")
attempt("mine acl", lambda: [(a.perms, a.id.scheme, a.id.id) for a in app.get_acls(base + "/mine")[0]])
attempt("other get mine", lambda: other.get(base + "/mine")[0])
attempt("bad x509 acl", lambda: app.create(base + "/bad", b"", acl=[ACL(Permissions.ALL, Id("x509", "not a dn"))]) and "ok")
attempt("app set", lambda: app.set(base + "/secret", b"new") and "ok")
attempt("app get again", lambda: app.get(base + "/secret")[0])
attempt("cleanup", lambda: [app.delete(base + "/mine"), app.delete(base + "/secret"), app.delete(base)] and "ok")
attempt("app addauth x509", lambda: app.add_auth("x509", "CN=someone,O=else") or "ok")
attempt("plain addauth x509", lambda: anon.add_auth("x509", "CN=app,O=zoo") or "ok")
for zk in (app, other, anon):
    zk.stop()
    zk.close()
