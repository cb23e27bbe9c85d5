# Seed 000's kazoo script. ZooKeeper returns children in no particular order,
# so lists are printed sorted; the host comes from the command line.
import sys
from kazoo.client import KazooClient

zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=30)

print(sorted(zk.get_children('/')))

zk.ensure_path('/myapi/database')
zk.create('/myapi/database/host', b'mongoserver')
zk.create('/myapi/database/port', b'27017')

print(sorted(zk.get_children('/')))
print(sorted(zk.get_children('/myapi')))
print(sorted(zk.get_children('/myapi/database')))

host = zk.get('/myapi/database/host')[0]
port = zk.get('/myapi/database/port')[0]
print(host, port)

for path in ('/myapi/database/host', '/myapi/database/port', '/myapi/database', '/myapi'):
    zk.delete(path)

print(sorted(zk.get_children('/')))
zk.stop()
