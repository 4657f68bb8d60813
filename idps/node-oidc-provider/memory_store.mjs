// An in-memory storage adapter for node-oidc-provider (its documented `adapter` option) that
// keeps everything until it expires. The provider's own development adapter is an LRU of 1,000
// entries: seeding 40,000 authorization codes and 300 sessions evicts most of them before use
// ("authorization code not found"), which would measure the cache, not the provider.

const stores = new Map();
const grants = new Map();
const sessionUids = new Map();
const userCodes = new Map();

// Models whose tokens belong to a grant, so that revoking the grant removes them.
const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

function now() {
  return Math.floor(Date.now() / 1000);
}

function exists(key) {
  const separator = key.indexOf(':');
  return stores.get(key.slice(0, separator))?.has(key.slice(separator + 1)) ?? false;
}

// Expired entries are removed every minute, and the indexes that named them, so memory follows
// the live entries.
setInterval(() => {
  const time = now();
  for (const store of stores.values()) {
    for (const [id, { expiresAt }] of store) {
      if (expiresAt !== undefined && expiresAt <= time) store.delete(id);
    }
  }
  for (const [grantId, members] of grants) {
    for (const key of members) if (!exists(key)) members.delete(key);
    if (members.size === 0) grants.delete(grantId);
  }
  for (const index of [sessionUids, userCodes]) {
    for (const [key, id] of index) {
      if (![...stores.values()].some((store) => store.has(id))) index.delete(key);
    }
  }
}, 60_000).unref();

export default class MemoryStore {
  constructor(model) {
    this.model = model;
    if (!stores.has(model)) stores.set(model, new Map());
    this.store = stores.get(model);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? now() + expiresIn : undefined;
    this.store.set(id, { payload, expiresAt });
    if (grantable.has(this.model) && payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
      grants.get(payload.grantId).add(`${this.model}:${id}`);
    }
    if (payload.uid) sessionUids.set(payload.uid, id);
    if (payload.userCode) userCodes.set(payload.userCode, id);
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    const id = sessionUids.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = userCodes.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = now();
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) {
      const separator = key.indexOf(':');
      stores.get(key.slice(0, separator))?.delete(key.slice(separator + 1));
    }
    grants.delete(grantId);
  }
}
