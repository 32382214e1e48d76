//! The server-side half of the remote backend: Lua scripts that Redis runs
//! atomically, so that each operation is one round trip and no other client
//! sees it half done.
//!
//! A segment NAME is four keys in one hash slot (`{NAME}`), so that a Redis
//! Cluster keeps them on one node:
//!
//! - `shmbox:{NAME}:meta`, a hash: `v` (format version), `size`, `life`,
//!   `gen` (committed writes), `fence` (the last lock token issued),
//!   `holder`, `holder_token` and `writing` (the lock's current holder),
//!   `deaths`, `created_ms`, `creator`, `last_writer`, `last_write_ms`;
//! - `shmbox:{NAME}:data`, a string of exactly `size` bytes;
//! - `shmbox:{NAME}:lease`, a string holding the lock holder's token, which
//!   expires (PX) unless its holder renews it;
//! - `shmbox:{NAME}:handles`, a sorted set of the open handles of an
//!   until-last-close segment, scored by when their leases end.
//!
//! Commits are published on the channel `shmbox:{NAME}:events` (the new
//! generation), and so are unlocks, which wake lock waiters.
//!
//! Every script returns an array whose first element says what happened:
//! `ok`, `created`, `opened`, `busy` (with the lease's remaining ms),
//! `notfound`, `exists`, `lost`, `version` (with the version found) or
//! `corrupt` (with a reason).

use std::sync::LazyLock;

use redis::Script;

/// The format version of a remote segment's keys.
pub(crate) const REMOTE_FORMAT: &str = "1";

/// Definitions every script starts with.
const PRELUDE: &str = r#"
local meta, data, lease, handles = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel = string.sub(meta, 1, -5) .. 'events'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function kind(key) return redis.call('TYPE', key)['ok'] end
-- Every part present and of its type; returns size and lifetime, or nil and
-- the reply that says what is wrong.
local function check(version)
  local t = kind(meta)
  if t == 'none' then return nil, {'notfound'} end
  if t ~= 'hash' then return nil, {'corrupt', 'its metadata key holds a ' .. t .. ', not a hash'} end
  local f = redis.call('HMGET', meta, 'v', 'size', 'life', 'gen')
  if not f[1] or not f[2] or not f[3] or not f[4] then
    return nil, {'corrupt', 'its metadata lacks the format version, size, lifetime or generation'}
  end
  if f[1] ~= version then return nil, {'version', f[1]} end
  local size = tonumber(f[2])
  if not size or size < 1 then return nil, {'corrupt', 'its metadata holds the size ' .. f[2]} end
  local d = kind(data)
  if d == 'none' then return nil, {'corrupt', 'its data key is missing'} end
  if d ~= 'string' then return nil, {'corrupt', 'its data key holds a ' .. d .. ', not a string'} end
  local len = redis.call('STRLEN', data)
  if len ~= size then return nil, {'corrupt', 'its data holds ' .. len .. ' bytes, not ' .. size} end
  local l = kind(lease)
  if l ~= 'none' and l ~= 'string' then return nil, {'corrupt', 'its lease key holds a ' .. l} end
  local h = kind(handles)
  if h ~= 'none' and h ~= 'zset' then return nil, {'corrupt', 'its handles key holds a ' .. h} end
  if f[3] ~= 'until-last-close' and f[3] ~= 'persistent' then
    return nil, {'corrupt', 'its metadata holds the lifetime ' .. f[3]}
  end
  return size, f[3]
end
-- An until-last-close segment whose handles' leases all ran out is dead:
-- its holders closed it, died or lost the server. Removed here.
local function reclaim_if_dead(now)
  if kind(meta) ~= 'hash' then return false end
  if redis.call('HGET', meta, 'life') ~= 'until-last-close' then return false end
  if kind(handles) == 'zset' then redis.call('ZREMRANGEBYSCORE', handles, '-inf', now) end
  if redis.call('EXISTS', handles) == 1 then return false end
  redis.call('DEL', meta, data, lease, handles)
  return true
end
-- A holder whose lease ran out without unlocking died (or was cut off):
-- its lock is taken over, and counted.
local function take_over_dead()
  local f = redis.call('HMGET', meta, 'holder_token', 'holder', 'writing')
  if f[1] and f[1] ~= '' then
    redis.call('HINCRBY', meta, 'deaths', 1)
    redis.call('HSET', meta, 'holder', '', 'holder_token', '', 'writing', '0')
    return f[2] or '', f[3] or '0'
  end
  return '', ''
end
"#;

/// Makes a script of `PRELUDE` and `body`.
fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Opens or creates. ARGV: version, size, lifetime, who, handle id, handle
/// lease (ms), mode (`open`, `create` or `open_or_create`).
pub(crate) static OPEN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local version, size, life, who, id, ttl, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local now = now_ms()
reclaim_if_dead(now)
if redis.call('EXISTS', meta) == 1 then
  if mode == 'create' then return {'exists'} end
  local found, lifetime = check(version)
  if not found then return lifetime end
  if lifetime == 'until-last-close' then redis.call('ZADD', handles, now + ttl, id) end
  return {'opened', found, lifetime}
end
if mode == 'open' then return {'notfound'} end
if redis.call('EXISTS', data) == 1 then return {'corrupt', 'its data key exists without its metadata'} end
redis.call('DEL', lease, handles)
redis.call('HSET', meta, 'v', version, 'size', size, 'life', life, 'gen', 0, 'fence', 0,
  'holder', '', 'holder_token', '', 'writing', 0, 'deaths', 0, 'created_ms', now,
  'creator', who, 'last_writer', '', 'last_write_ms', 0)
redis.call('SETRANGE', data, size - 1, '\0')
if life == 'until-last-close' then redis.call('ZADD', handles, now + ttl, id) end
return {'created', size, life}
"#,
    )
});

/// A handle closes. ARGV: handle id.
pub(crate) static CLOSE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if kind(handles) == 'zset' then redis.call('ZREM', handles, ARGV[1]) end
if reclaim_if_dead(now_ms()) then return {'removed'} end
return {'ok'}
"#,
    )
});

/// Renews a handle's lease. ARGV: handle id, lease (ms).
pub(crate) static RENEW_HANDLE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if kind(meta) ~= 'hash' then return {'notfound'} end
redis.call('ZADD', handles, now_ms() + tonumber(ARGV[2]), ARGV[1])
return {'ok'}
"#,
    )
});

/// Writes without a lock held: lock check, range write, generation bump and
/// notification in one round trip. ARGV: offset, bytes, who, the writer's
/// clock (ms since the epoch), as a local segment records it.
pub(crate) static WRITE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local f = redis.call('HMGET', meta, 'size', 'holder_token')
if not f[1] then return {'notfound'} end
if redis.call('STRLEN', data) ~= tonumber(f[1]) then return {'corrupt', 'its data is missing or of the wrong size'} end
if redis.call('GET', lease) then return {'busy', redis.call('PTTL', lease)} end
if f[2] and f[2] ~= '' then take_over_dead() end
redis.call('SETRANGE', data, tonumber(ARGV[1]), ARGV[2])
local gen = redis.call('HINCRBY', meta, 'gen', 1)
redis.call('HSET', meta, 'last_writer', ARGV[3], 'last_write_ms', ARGV[4])
redis.call('PUBLISH', channel, gen)
return {'ok', gen}
"#,
    )
});

/// Reads a range and its generation, atomically. ARGV: offset, length, and
/// the lock token of a locked read (empty for a lock-free one).
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local f = redis.call('HMGET', meta, 'size', 'gen')
if not f[1] then return {'notfound'} end
if redis.call('STRLEN', data) ~= tonumber(f[1]) then return {'corrupt', 'its data is missing or of the wrong size'} end
if ARGV[3] ~= '' then
  local holder = redis.call('GET', lease)
  if holder and holder ~= ARGV[3] then return {'busy', redis.call('PTTL', lease)} end
end
local offset, len = tonumber(ARGV[1]), tonumber(ARGV[2])
local bytes = ''
if len > 0 then bytes = redis.call('GETRANGE', data, offset, offset + len - 1) end
return {'ok', tonumber(f[2]), bytes}
"#,
    )
});

/// Takes the lock. ARGV: who, lease (ms).
pub(crate) static LOCK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not redis.call('HGET', meta, 'size') then return {'notfound'} end
if redis.call('GET', lease) then return {'busy', redis.call('PTTL', lease)} end
local died, writing = take_over_dead()
local token = redis.call('HINCRBY', meta, 'fence', 1)
redis.call('SET', lease, token, 'PX', tonumber(ARGV[2]))
redis.call('HSET', meta, 'holder', ARGV[1], 'holder_token', token, 'writing', 0)
return {'ok', token, died, writing}
"#,
    )
});

/// Renews the lock's lease if `token` still holds it. ARGV: token, lease (ms).
pub(crate) static RENEW_LOCK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('GET', lease) ~= ARGV[1] then return {'lost'} end
redis.call('PEXPIRE', lease, tonumber(ARGV[2]))
return {'ok'}
"#,
    )
});

/// Records that the holder `token` began a write (so that its death is
/// reported as one mid-write), checking that it still holds the lock.
/// ARGV: token.
pub(crate) static BEGIN_WRITE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('GET', lease) ~= ARGV[1] then return {'lost'} end
redis.call('HSET', meta, 'writing', 1)
return {'ok'}
"#,
    )
});

/// Applies the holder's writes and releases the lock, if `token` still
/// holds it: otherwise nothing lands. ARGV: token, who, commit (`1` to
/// commit a generation even with no writes), then offset and bytes pairs.
pub(crate) static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('GET', lease) ~= ARGV[1] then return {'lost'} end
local size = tonumber(redis.call('HGET', meta, 'size'))
if not size or redis.call('STRLEN', data) ~= size then return {'corrupt', 'its data is missing or of the wrong size'} end
for i = 4, #ARGV, 2 do
  redis.call('SETRANGE', data, tonumber(ARGV[i]), ARGV[i + 1])
end
local gen
if #ARGV >= 4 or ARGV[3] == '1' then
  gen = redis.call('HINCRBY', meta, 'gen', 1)
  redis.call('HSET', meta, 'last_writer', ARGV[2], 'last_write_ms', now_ms())
else
  gen = tonumber(redis.call('HGET', meta, 'gen'))
end
redis.call('HSET', meta, 'holder', '', 'holder_token', '', 'writing', 0)
redis.call('DEL', lease)
redis.call('PUBLISH', channel, gen)
return {'ok', gen}
"#,
    )
});

/// Describes the segment, after removing it if it is dead. ARGV: version.
pub(crate) static INFO: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = now_ms()
if reclaim_if_dead(now) then return {'notfound'} end
local size, life = check(ARGV[1])
if not size then return life end
local live = 0
if kind(handles) == 'zset' then live = redis.call('ZCOUNT', handles, now, '+inf') end
return {'ok', redis.call('HGETALL', meta), redis.call('PTTL', lease), live}
"#,
    )
});

/// Removes the segment, unless it is until-last-close and open somewhere.
pub(crate) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = now_ms()
if reclaim_if_dead(now) then return {'notfound'} end
local t = kind(meta)
if t == 'none' then return {'notfound'} end
if t == 'hash' and redis.call('HGET', meta, 'life') == 'until-last-close'
   and kind(handles) == 'zset' and redis.call('ZCOUNT', handles, now, '+inf') > 0 then
  return {'busy', 0}
end
redis.call('DEL', meta, data, lease, handles)
return {'ok'}
"#,
    )
});
