"""The cluster's state changes, each one Lua script that Redis runs atomically.

Keys (one Redis database per cluster):

    chat:seq                 counter: the next stream entry's id (messages take theirs from it)
    chat:dmseq               counter: direct-message ids
    chat:rooms               hash: room -> topic (a room exists once it is here)
    chat:log:<room>          stream: the room's messages and presence, entry id "<n>-0"
    chat:members:<room>      hash: folded nick -> nick
    chat:in:<folded>         set: the rooms a nick is in
    chat:nick:<folded>       hash: nick, node, session of whoever holds the nick
    chat:nodes               set: live nodes
    chat:alive:<node>        string with an expiry, refreshed by the node's heartbeat
    chat:node:<node>:nicks   set: folded nicks held on a node
    chat:inbox:<node>        stream: direct messages for a node's clients
    chat:events              stream: renames, for every node
    chat:accounts            hash: folded nick -> password hash
    chat:epoch               string: set once; changes only if Redis lost its data

Every entry of a room's stream takes its id from `chat:seq` inside the script
that adds it, so a stream's ids are the room's order and a message's id is
its stream id: unique in the cluster and increasing within each room.
ARGV[1] is always the cap on a room stream's length.
"""

from __future__ import annotations

__all__ = [
    "CLAIM",
    "DIRECT",
    "HEARTBEAT",
    "JOIN",
    "PART",
    "POST",
    "REAP",
    "RELEASE",
    "RENAME",
    "TOPIC",
]

_PRELUDE = """
local cap = ARGV[1]
local function append(room, ...)
  local id = redis.call('INCR', 'chat:seq')
  redis.call('XADD', 'chat:log:' .. room, 'MAXLEN', '~', cap, id .. '-0', ...)
  return id
end
local function release(folded, reason)
  local key = 'chat:nick:' .. folded
  local nick = redis.call('HGET', key, 'nick') or folded
  for _, room in ipairs(redis.call('SMEMBERS', 'chat:in:' .. folded)) do
    if redis.call('HDEL', 'chat:members:' .. room, folded) == 1 then
      append(room, 'k', 'l', 'nick', nick, 'reason', reason)
    end
  end
  redis.call('DEL', 'chat:in:' .. folded)
  local node = redis.call('HGET', key, 'node')
  if node then redis.call('SREM', 'chat:node:' .. node .. ':nicks', folded) end
  redis.call('DEL', key)
end
local function holder_alive(folded)
  local node = redis.call('HGET', 'chat:nick:' .. folded, 'node')
  return node and redis.call('EXISTS', 'chat:alive:' .. node) == 1
end
"""

# ARGV: cap, folded, nick, node, session. 1: claimed; 0: held by a live node.
# A nick held on a node that died is released (its rooms hear `lost`) and taken.
CLAIM = (
    _PRELUDE
    + """
local folded, nick, node, session = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', 'chat:nick:' .. folded) == 1 then
  if holder_alive(folded) then return 0 end
  release(folded, 'lost')
end
redis.call('HSET', 'chat:nick:' .. folded, 'nick', nick, 'node', node, 'session', session)
redis.call('SADD', 'chat:node:' .. node .. ':nicks', folded)
return 1
"""
)

# ARGV: cap, folded, session, reason. Releases the nick if that session still holds it.
RELEASE = (
    _PRELUDE
    + """
local folded, session, reason = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', 'chat:nick:' .. folded, 'session') ~= session then return 0 end
release(folded, reason)
return 1
"""
)

# ARGV: cap, room, folded, nick, capacity. {0}: the room is full;
# {1, topic, nicks...}: a member now.
JOIN = (
    _PRELUDE
    + """
local room, folded, nick, capacity = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local members = 'chat:members:' .. room
redis.call('HSETNX', 'chat:rooms', room, '')
if redis.call('HEXISTS', members, folded) == 0 then
  if redis.call('HLEN', members) >= capacity then return {0} end
  redis.call('HSET', members, folded, nick)
  redis.call('SADD', 'chat:in:' .. folded, room)
  append(room, 'k', 'j', 'nick', nick)
end
local reply = {1, redis.call('HGET', 'chat:rooms', room)}
for _, member in ipairs(redis.call('HVALS', members)) do reply[#reply + 1] = member end
return reply
"""
)

# ARGV: cap, room, folded, nick, reason. 1: left; 0: was not a member.
PART = (
    _PRELUDE
    + """
local room, folded, nick, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HDEL', 'chat:members:' .. room, folded) == 0 then return 0 end
redis.call('SREM', 'chat:in:' .. folded, room)
append(room, 'k', 'l', 'nick', nick, 'reason', reason)
return 1
"""
)

# ARGV: cap, ts, then (room, nick, text, token) per message. The messages' ids, in order.
POST = (
    _PRELUDE
    + """
local ids = {}
for i = 3, #ARGV, 4 do
  ids[#ids + 1] = append(ARGV[i], 'k', 'm', 'nick', ARGV[i + 1], 'text', ARGV[i + 2],
                         'ts', ARGV[2], 'tok', ARGV[i + 3])
end
return ids
"""
)

# ARGV: cap, room, topic, nick, token.
TOPIC = (
    _PRELUDE
    + """
local room, topic, nick, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', 'chat:rooms', room, topic)
return append(room, 'k', 't', 'nick', nick, 'topic', topic, 'tok', token)
"""
)

# ARGV: cap, to (folded), from nick, text, ts, inbox cap. {id, nick}, or {} if nobody has `to`.
DIRECT = (
    _PRELUDE
    + """
local to, from, text, ts = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = 'chat:nick:' .. to
if not holder_alive(to) then return {} end
local node = redis.call('HGET', key, 'node')
local nick = redis.call('HGET', key, 'nick')
local id = redis.call('INCR', 'chat:dmseq')
redis.call('XADD', 'chat:inbox:' .. node, 'MAXLEN', '~', ARGV[6], '*',
           'k', 'd', 'id', id, 'nick', from, 'to', nick, 'text', text, 'ts', ts)
return {id, nick}
"""
)

# ARGV: cap, old (folded), new (folded), new nick, node, session, events cap.
# 1: renamed; 0: the new nick is held by a live node.
RENAME = (
    _PRELUDE
    + """
local old, new, nick, node, session = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if old ~= new and redis.call('EXISTS', 'chat:nick:' .. new) == 1 then
  if holder_alive(new) then return 0 end
  release(new, 'lost')
end
local before = redis.call('HGET', 'chat:nick:' .. old, 'nick') or old
local rooms = redis.call('SMEMBERS', 'chat:in:' .. old)
for _, room in ipairs(rooms) do
  redis.call('HDEL', 'chat:members:' .. room, old)
  redis.call('HSET', 'chat:members:' .. room, new, nick)
end
if old ~= new then
  if #rooms > 0 then redis.call('RENAME', 'chat:in:' .. old, 'chat:in:' .. new) end
  redis.call('DEL', 'chat:nick:' .. old)
  redis.call('SREM', 'chat:node:' .. node .. ':nicks', old)
  redis.call('SADD', 'chat:node:' .. node .. ':nicks', new)
end
redis.call('HSET', 'chat:nick:' .. new, 'nick', nick, 'node', node, 'session', session)
redis.call('XADD', 'chat:events', 'MAXLEN', '~', ARGV[7], '*',
           'k', 'r', 'old', before, 'new', nick, 'rooms', table.concat(rooms, ' '))
return 1
"""
)

# ARGV: cap, node, ttl in ms, a fresh random epoch. {1 if the node had been
# reaped (its clients' state is gone), the cluster's epoch}. The epoch is set
# once, by the first node; a different one later means Redis lost its data.
HEARTBEAT = (
    _PRELUDE
    + """
redis.call('SET', 'chat:alive:' .. ARGV[2], '1', 'PX', ARGV[3])
redis.call('SET', 'chat:epoch', ARGV[4], 'NX')
return {redis.call('SADD', 'chat:nodes', ARGV[2]), redis.call('GET', 'chat:epoch')}
"""
)

# ARGV: cap, node. Forgets a node whose heartbeat expired and releases the nicks
# it still held (their rooms hear `lost`); how many it released.
REAP = (
    _PRELUDE
    + """
local node = ARGV[2]
if redis.call('EXISTS', 'chat:alive:' .. node) == 1 then return 0 end
if redis.call('SREM', 'chat:nodes', node) == 0 then return 0 end
local released = 0
for _, folded in ipairs(redis.call('SMEMBERS', 'chat:node:' .. node .. ':nicks')) do
  if redis.call('HGET', 'chat:nick:' .. folded, 'node') == node then
    release(folded, 'lost')
    released = released + 1
  end
end
redis.call('DEL', 'chat:node:' .. node .. ':nicks', 'chat:inbox:' .. node)
return released
"""
)
