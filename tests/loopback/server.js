// A stock LoopBack 3 server shaped like Signzy's v2 API: patrons (a User model) log in and out, and own
// their identities; a snoop runs a task on an identity, authenticated by that identity's own token in its
// body. Used by the interop tests: no Signzy code, only LoopBack's own behaviour (models, ACLs, operation
// hooks). The snoop's result is a tiny stand-in: LoopBack's shape and auth are what the tests check.
'use strict';
const crypto = require('crypto');
const loopback = require('loopback');
const errorHandler = require('strong-error-handler');

const port = Number(process.argv[2] || 0);
const app = loopback();
app.dataSource('db', {connector: 'memory'});

const owner = (property) => ({principalType: 'ROLE', principalId: '$owner', permission: 'ALLOW', property});
const Patron = loopback.createModel({
  name: 'patron',
  base: 'User',
  plural: 'patrons',
  // Counts are for the tests: how many identities and snoops the server holds for a patron.
  acls: ['__create__identities', '__get__identities', '__findById__identities', '__count__identities',
    '__count__snoops'].map(owner),
});
const Identity = loopback.createModel({
  name: 'identity',
  plural: 'identities',
  properties: {
    id: {type: 'string', id: true},
    type: {type: 'string', required: true},
    email: 'string',
    callbackUrl: 'string',
    images: ['string'],
    accessToken: 'string', // the identity's own token: the credential of its snoops
    autoRecognition: ['string'],
    verification: ['string'],
    forgeryCheck: ['string'],
  },
});
const Snoop = loopback.createModel({
  name: 'snoop',
  plural: 'snoops',
  properties: {
    id: {type: 'string', id: true},
    service: 'string',
    itemId: 'string',
    accessToken: 'string',
    task: 'string',
    essentials: 'object',
    response: 'object',
  },
  hidden: ['patronId'],
  // Open to anyone (no patron token): the identity's token in the body is the credential.
  acls: [
    {principalType: 'ROLE', principalId: '$everyone', permission: 'DENY'},
    {principalType: 'ROLE', principalId: '$everyone', permission: 'ALLOW', property: 'create'},
  ],
});
for (const model of [loopback.AccessToken, loopback.ACL, loopback.Role, loopback.RoleMapping]) {
  app.model(model, {dataSource: 'db', public: false});
}
app.model(Patron, {dataSource: 'db', public: true});
app.model(Identity, {dataSource: 'db', public: false});
app.model(Snoop, {dataSource: 'db', public: true});
loopback.AccessToken.belongsTo(Patron, {as: 'user', foreignKey: 'userId'});
Patron.hasMany(loopback.AccessToken, {as: 'accessTokens', foreignKey: 'userId', options: {disableInclude: true}});
Patron.hasMany(Identity, {as: 'identities', foreignKey: 'patronId'});
Patron.hasMany(Snoop, {as: 'snoops', foreignKey: 'patronId'});
Identity.belongsTo(Patron, {as: 'patron', foreignKey: 'patronId'});

// 24 hex digits, as Signzy's ids: made like MongoDB's ObjectIds (seconds, a per-process random part, a counter),
// so they ascend in creation order, the order in which LoopBack lists what has no `order` filter.
const PROCESS_PART = crypto.randomBytes(5).toString('hex');
let counter = 0;
const hexId = () => {
  counter = (counter + 1) % 0x1000000;
  const seconds = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return seconds + PROCESS_PART + counter.toString(16).padStart(6, '0');
};
const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const identityToken = () => Array.from(crypto.randomBytes(32), (b) => LOWER_ALNUM[b % LOWER_ALNUM.length]).join('');

Identity.observe('before save', async (ctx) => {
  if (!ctx.isNewInstance) return;
  Object.assign(ctx.instance, {
    id: hexId(), accessToken: identityToken(), autoRecognition: [], verification: [], forgeryCheck: [],
  });
});

const RESULTS = {
  fetch: (e) => ({number: String(e.number || '').toUpperCase(), name: 'RAVI KUMAR', fatherName: 'SURESH KUMAR',
    dob: '01/01/1990'}),
  verification: (e) => ({verified: true, message: 'Verification completed with positive result',
    upstreamName: String(e.name || '').toUpperCase()}),
};
Snoop.validatesInclusionOf('task', {in: Object.keys(RESULTS)});

Snoop.observe('before save', async (ctx) => {
  if (!ctx.isNewInstance) return;
  const snoop = ctx.instance;
  const identity = typeof snoop.itemId === 'string' ? await Identity.findById(snoop.itemId) : null;
  if (!identity || typeof snoop.accessToken !== 'string' || snoop.accessToken !== identity.accessToken) {
    const error = new Error('Authorization Required'); // LoopBack's own 401, as its ACLs answer it
    error.statusCode = 401;
    error.code = 'AUTHORIZATION_REQUIRED';
    throw error;
  }
  const essentials = snoop.essentials || {};
  const result = RESULTS[snoop.task] ? RESULTS[snoop.task](essentials) : undefined;
  Object.assign(snoop, {
    id: hexId(), patronId: identity.patronId, essentials,
    response: {instance: {id: identity.id, callbackUrl: identity.callbackUrl}, result},
  });
});

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
