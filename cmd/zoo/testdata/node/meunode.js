// Seed 002's meunode.js, unchanged but for the connection string, which
// comes from ZK_HOSTS (the seed had it inline) so the test can point it at
// its ensemble. Usage: ZK_HOSTS=h1:p1,h2:p2,h3:p3 node meunode.js /path
var zookeeper = require('node-zookeeper-client');
var client = zookeeper.createClient(process.env.ZK_HOSTS || 'localhost:2181,localhost:2182,localhost:2183');
var path = process.argv[2];
console.log('Estado Atual: %s', client.getState());
var sessionTimeout = client.getSessionTimeout();
console.log('Tempo da Sessão: %s', sessionTimeout)

client.once('connected', function () {
  console.log('Conectado ao servidor.');
  console.log('Estado Atual: %s', client.getState());
  var id = client.getSessionId();
  console.log('Identificação: %s', id.toString('hex'));

  client.create(path, function (error) {
    if (error) {
      console.log('Falhou para criar o node: %s para: %s.', path, error);
    } else {
      console.log('Node: %s is criado corretamente.', path);
    }
    client.close();
  });
});
client.connect();
