'use strict';
// The seed article's Hello World (the handler of seed-hello.js, unchanged) served with
// https.createServer, for the HTTPS figure of `cargo xtask bench`. KEY and CERT name the
// PEM files of its key and certificate (the suite makes an ECDSA P-256 pair, wirelab's
// key type, at bench time); PORT its port. Benchmark anchor.
const https = require('https');
const fs = require('fs');
const port = +(process.env.PORT || 1443);
const options = {
  key: fs.readFileSync(process.env.KEY),
  cert: fs.readFileSync(process.env.CERT),
};
https.createServer(options, function (req, res) {
  res.writeHead(200, {'content-type': 'text/plain'});
  res.end('Hello World\n');
}).listen(port, '127.0.0.1');
console.log('Server running at https://127.0.0.1:' + port);
