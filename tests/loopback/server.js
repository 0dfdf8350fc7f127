// A stock LoopBack 3 server shaped like Signzy's v2 API: patrons (a User model) log in and out, and own
// their identities. Used by the interop tests: no Signzy code, only LoopBack's own behaviour.
'use strict';
const loopback = require('loopback');
const errorHandler = require('strong-error-handler');

const port = Number(process.argv[2] || 0);
const app = loopback();
app.dataSource('db', {connector: 'memory'});

const Patron = loopback.createModel({
  name: 'patron',
  base: 'User',
  plural: 'patrons',
  acls: [
    {principalType: 'ROLE', principalId: '$owner', permission: 'ALLOW', property: '__create__identities'},
    {principalType: 'ROLE', principalId: '$owner', permission: 'ALLOW', property: '__get__identities'},
    {principalType: 'ROLE', principalId: '$owner', permission: 'ALLOW', property: '__findById__identities'},
  ],
});
const Identity = loopback.createModel({
  name: 'identity',
  plural: 'identities',
  properties: {type: {type: 'string', required: true}, email: 'string', callbackUrl: 'string', images: ['string']},
});
for (const model of [loopback.AccessToken, loopback.ACL, loopback.Role, loopback.RoleMapping]) {
  app.model(model, {dataSource: 'db', public: false});
}
app.model(Patron, {dataSource: 'db', public: true});
app.model(Identity, {dataSource: 'db', public: false});
loopback.AccessToken.belongsTo(Patron, {as: 'user', foreignKey: 'userId'});
Patron.hasMany(loopback.AccessToken, {as: 'accessTokens', foreignKey: 'userId', options: {disableInclude: true}});
Patron.hasMany(Identity, {as: 'identities', foreignKey: 'patronId'});
Identity.belongsTo(Patron, {as: 'patron', foreignKey: 'patronId'});

app.enableAuth({dataSource: 'db'});
app.use(loopback.token({model: loopback.AccessToken}));
app.use('/api/v2', loopback.rest());
app.use(errorHandler({debug: false, log: false}));

const patrons = JSON.parse(process.env.LOOPBACK_PATRONS || '[]');
Promise.all(patrons.map((p) => Patron.create(p))).then((created) => {
  const server = app.listen(port, '127.0.0.1', () => {
    const ids = Object.fromEntries(created.map((p) => [p.username, String(p.id)]));
    console.log(JSON.stringify({port: server.address().port, ids}));
  });
});
