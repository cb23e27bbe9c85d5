// A watch and an ephemeral node with node-zookeeper-client, in the style of
// seed 002's scripts: a watcher client and an owner client, each given its
// own connection string (ZK_WATCHER_HOSTS, ZK_OWNER_HOSTS; the test points
// them at different members, so every event crosses members).
//
// The watcher creates PARENT and PARENT/fixo, and lists PARENT with a watch.
// The owner creates the ephemeral PARENT/efemero: the watcher's child watch
// fires. The watcher reads the node with a data watch. The owner's client
// closes: the node goes with its session, and both watches fire.
//
// Usage: ZK_WATCHER_HOSTS=h1:p1 ZK_OWNER_HOSTS=h2:p2 node watchnode.js PARENT
// Prints deterministic lines; exits 1 on an error, 2 when stuck.
var zookeeper = require('node-zookeeper-client');

var parent = process.argv[2];
var node = parent + '/efemero';
var watcher = zookeeper.createClient(process.env.ZK_WATCHER_HOSTS);
var owner = zookeeper.createClient(process.env.ZK_OWNER_HOSTS);

setTimeout(function () {
    console.log('FAIL: still running after 30s');
    process.exit(2);
}, 30000).unref();

// call runs a callback-style client method as a promise of its results.
function call(client, method) {
    var args = Array.prototype.slice.call(arguments, 2);
    return new Promise(function (resolve, reject) {
        client[method].apply(client, args.concat(function (error) {
            if (error) {
                reject(new Error(method + ' ' + args[0] + ': ' + error));
                return;
            }
            resolve(Array.prototype.slice.call(arguments, 1));
        }));
    });
}

function connected(client) {
    return new Promise(function (resolve) {
        client.once('connected', resolve);
        client.connect();
    });
}

// watch returns a one-shot watcher function and a promise of its event.
function watch() {
    var fire;
    var fired = new Promise(function (resolve) { fire = resolve; });
    return { watcher: function (event) { fire(event); }, fired: fired };
}

function sorted(children) {
    return JSON.stringify(children.slice().sort());
}

async function main() {
    await Promise.all([connected(watcher), connected(owner)]);
    console.log('both clients connected');

    await call(watcher, 'create', parent);
    await call(watcher, 'create', parent + '/fixo', Buffer.from('fixo'));
    var children = watch();
    var listed = await call(watcher, 'getChildren', parent, children.watcher);
    console.log('watcher: children of %s: %s', parent, sorted(listed[0]));

    var created = await call(owner, 'create', node, Buffer.from('vivo'), zookeeper.CreateMode.EPHEMERAL);
    console.log('owner: created %s', created[0]);
    console.log('watcher: event %s', await children.fired);

    children = watch();
    listed = await call(watcher, 'getChildren', parent, children.watcher);
    console.log('watcher: children of %s: %s', parent, sorted(listed[0]));
    var data = watch();
    var got = await call(watcher, 'getData', node, data.watcher);
    console.log('watcher: %s holds %s, ephemeral owner is the owner\'s session: %s',
        node, got[0].toString(), got[1].ephemeralOwner.equals(owner.getSessionId()));

    owner.close();
    console.log('owner: closed');
    // Both watches fire for the one deletion; printed in a fixed order.
    console.log('watcher: event %s', await data.fired);
    console.log('watcher: event %s', await children.fired);

    var stat = await call(watcher, 'exists', node);
    console.log('watcher: %s exists: %s', node, stat[0] !== null && stat[0] !== undefined);
    listed = await call(watcher, 'getChildren', parent);
    console.log('watcher: children of %s: %s', parent, sorted(listed[0]));
    watcher.close();
}

main().catch(function (error) {
    console.log('FAIL: %s', error.message);
    process.exit(1);
});
