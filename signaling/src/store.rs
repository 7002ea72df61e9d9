//! The session store: live state shared by the nodes of a deployment. One trait, [`Store`],
//! with an in-process implementation (the embedded default) and a Redis one (production).
//! Both run the same test suite (`tests/store_suite.rs`).
//!
//! Redis keys (all prefixed `jiefen:`), each with its lifetime:
//! | key | type | lifetime |
//! |---|---|---|
//! | `jiefen:node:{node_id}` | string, JSON [`NodeInfo`] | `NODE_TTL`, refreshed by each heartbeat |
//! | `jiefen:nodes` | set of node ids | permanent; ids whose node key expired are pruned on read |
//! | `jiefen:room:{room}:node` | string, the hosting node id | `ROOM_TTL`, refreshed while the room lives |
//! | `jiefen:room:{room}:participants` | hash identity → JSON [`ParticipantRecord`] | `ROOM_TTL`, refreshed with the room |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::token::Role;

/// A node whose heartbeat is older than this is dead.
pub const NODE_TTL: Duration = Duration::from_secs(6);
/// How often a node renews its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// A room record not refreshed for this long is gone (its node died).
pub const ROOM_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// The URL clients use to reach this node's signaling.
    pub url: String,
    pub media_addrs: Vec<String>,
    /// Participants hosted now.
    pub load: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRecord {
    pub identity: String,
    pub name: String,
    pub role: Role,
    pub node_id: String,
    /// `lobby`, `joined` or `reconnecting`.
    pub state: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("session store holds malformed data: {0}")]
    Corrupt(String),
}

/// Picks the least-loaded live node; ties go to the lowest id so the choice is stable.
pub fn select_node(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes.iter().min_by(|a, b| a.load.cmp(&b.load).then_with(|| a.node_id.cmp(&b.node_id)))
}

pub trait Store: Send + Sync {
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn heartbeat(&self, node: &NodeInfo) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn live_nodes(&self) -> impl Future<Output = Result<Vec<NodeInfo>, StoreError>> + Send;
    /// A node leaving on purpose (drain): it stops being chosen at once.
    fn remove_node(&self, node_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records `node_id` as the room's host unless a live host (one whose heartbeat has not
    /// expired) is recorded; returns the host. A dead node's rooms are taken over this way.
    fn claim_room(&self, room: &str, node_id: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn room_node(&self, room: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Keeps a live room's records from expiring.
    fn refresh_room(&self, room: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn release_room(&self, room: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn put_participant(&self, room: &str, p: &ParticipantRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn remove_participant(&self, room: &str, identity: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn participants(&self, room: &str) -> impl Future<Output = Result<Vec<ParticipantRecord>, StoreError>> + Send;
}

/// The embedded store: the same semantics as Redis, TTLs included, in this process.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Default)]
struct MemoryInner {
    nodes: HashMap<String, (NodeInfo, Instant)>,
    rooms: HashMap<String, (String, Instant)>,
    participants: HashMap<String, HashMap<String, ParticipantRecord>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> Result<T, StoreError> {
        let mut guard = self.inner.lock().map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|_| ())
    }
    async fn heartbeat(&self, node: &NodeInfo) -> Result<(), StoreError> {
        self.with(|s| {
            s.nodes.insert(node.node_id.clone(), (node.clone(), Instant::now() + NODE_TTL));
        })
    }
    async fn live_nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        self.with(|s| {
            let now = Instant::now();
            s.nodes.retain(|_, (_, exp)| *exp > now);
            let mut v: Vec<NodeInfo> = s.nodes.values().map(|(n, _)| n.clone()).collect();
            v.sort_by(|a, b| a.node_id.cmp(&b.node_id));
            v
        })
    }
    async fn remove_node(&self, node_id: &str) -> Result<(), StoreError> {
        self.with(|s| {
            s.nodes.remove(node_id);
        })
    }
    async fn claim_room(&self, room: &str, node_id: &str) -> Result<String, StoreError> {
        self.with(|s| {
            let now = Instant::now();
            let live = |id: &str| id == node_id || s.nodes.get(id).is_some_and(|(_, exp)| *exp > now);
            match s.rooms.get(room) {
                Some((owner, exp)) if *exp > now && live(owner) => owner.clone(),
                _ => {
                    s.rooms.insert(room.to_string(), (node_id.to_string(), now + ROOM_TTL));
                    node_id.to_string()
                }
            }
        })
    }
    async fn room_node(&self, room: &str) -> Result<Option<String>, StoreError> {
        self.with(|s| s.rooms.get(room).filter(|(_, exp)| *exp > Instant::now()).map(|(n, _)| n.clone()))
    }
    async fn refresh_room(&self, room: &str) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some((_, exp)) = s.rooms.get_mut(room) {
                *exp = Instant::now() + ROOM_TTL;
            }
        })
    }
    async fn release_room(&self, room: &str) -> Result<(), StoreError> {
        self.with(|s| {
            s.rooms.remove(room);
            s.participants.remove(room);
        })
    }
    async fn put_participant(&self, room: &str, p: &ParticipantRecord) -> Result<(), StoreError> {
        self.with(|s| {
            s.participants.entry(room.to_string()).or_default().insert(p.identity.clone(), p.clone());
        })
    }
    async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(m) = s.participants.get_mut(room) {
                m.remove(identity);
            }
        })
    }
    async fn participants(&self, room: &str) -> Result<Vec<ParticipantRecord>, StoreError> {
        self.with(|s| {
            let mut v: Vec<ParticipantRecord> = s.participants.get(room).map(|m| m.values().cloned().collect()).unwrap_or_default();
            v.sort_by(|a, b| a.identity.cmp(&b.identity));
            v
        })
    }
}

/// The production store on Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects with short timeouts so that, while Redis is away, joins fail fast.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = redis::aio::ConnectionManager::new_with_config(client, config).await.map_err(unavailable)?;
        let store = RedisStore { conn };
        store.ping().await?;
        Ok(store)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(unavailable)
    }
}

fn node_key(id: &str) -> String {
    format!("jiefen:node:{id}")
}
fn room_node_key(room: &str) -> String {
    format!("jiefen:room:{room}:node")
}
fn room_participants_key(room: &str) -> String {
    format!("jiefen:room:{room}:participants")
}
const NODES_KEY: &str = "jiefen:nodes";

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
    async fn heartbeat(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let json = to_json(node)?;
        let _: () = self.query(redis::cmd("SET").arg(node_key(&node.node_id)).arg(json).arg("PX").arg(NODE_TTL.as_millis() as u64)).await?;
        let _: i64 = self.query(redis::cmd("SADD").arg(NODES_KEY).arg(&node.node_id)).await?;
        Ok(())
    }
    async fn live_nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let ids: Vec<String> = self.query(redis::cmd("SMEMBERS").arg(NODES_KEY)).await?;
        let mut nodes = Vec::new();
        for id in ids {
            let value: Option<String> = self.query(redis::cmd("GET").arg(node_key(&id))).await?;
            match value {
                Some(json) => nodes.push(serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?),
                None => {
                    let _: i64 = self.query(redis::cmd("SREM").arg(NODES_KEY).arg(&id)).await?;
                }
            }
        }
        nodes.sort_by(|a: &NodeInfo, b| a.node_id.cmp(&b.node_id));
        Ok(nodes)
    }
    async fn remove_node(&self, node_id: &str) -> Result<(), StoreError> {
        let _: i64 = self.query(redis::cmd("DEL").arg(node_key(node_id))).await?;
        let _: i64 = self.query(redis::cmd("SREM").arg(NODES_KEY).arg(node_id)).await?;
        Ok(())
    }
    async fn claim_room(&self, room: &str, node_id: &str) -> Result<String, StoreError> {
        let ttl = ROOM_TTL.as_millis() as u64;
        // One round trip, atomic: keep a live owner, otherwise take the room.
        let script = redis::Script::new(
            r"local owner = redis.call('GET', KEYS[1])
              if owner and owner ~= ARGV[1] and redis.call('EXISTS', 'jiefen:node:' .. owner) == 1 then
                return owner
              end
              redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
              return ARGV[1]",
        );
        let mut conn = self.conn.clone();
        script.key(room_node_key(room)).arg(node_id).arg(ttl).invoke_async(&mut conn).await.map_err(unavailable)
    }
    async fn room_node(&self, room: &str) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("GET").arg(room_node_key(room))).await
    }
    async fn refresh_room(&self, room: &str) -> Result<(), StoreError> {
        let ms = ROOM_TTL.as_millis() as u64;
        let _: i64 = self.query(redis::cmd("PEXPIRE").arg(room_node_key(room)).arg(ms)).await?;
        let _: i64 = self.query(redis::cmd("PEXPIRE").arg(room_participants_key(room)).arg(ms)).await?;
        Ok(())
    }
    async fn release_room(&self, room: &str) -> Result<(), StoreError> {
        let _: i64 = self.query(redis::cmd("DEL").arg(room_node_key(room)).arg(room_participants_key(room))).await?;
        Ok(())
    }
    async fn put_participant(&self, room: &str, p: &ParticipantRecord) -> Result<(), StoreError> {
        let json = to_json(p)?;
        let key = room_participants_key(room);
        let _: i64 = self.query(redis::cmd("HSET").arg(&key).arg(&p.identity).arg(json)).await?;
        let _: i64 = self.query(redis::cmd("PEXPIRE").arg(&key).arg(ROOM_TTL.as_millis() as u64)).await?;
        Ok(())
    }
    async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), StoreError> {
        let _: i64 = self.query(redis::cmd("HDEL").arg(room_participants_key(room)).arg(identity)).await?;
        Ok(())
    }
    async fn participants(&self, room: &str) -> Result<Vec<ParticipantRecord>, StoreError> {
        let values: Vec<String> = self.query(redis::cmd("HVALS").arg(room_participants_key(room))).await?;
        let mut v = values
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<ParticipantRecord>, _>>()?;
        v.sort_by(|a, b| a.identity.cmp(&b.identity));
        Ok(v)
    }
}

/// The store picked at start: Redis when `REDIS_URL` is set, else in-process.
#[derive(Clone)]
pub enum SessionStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl SessionStore {
    pub fn kind(&self) -> &'static str {
        match self {
            SessionStore::Memory(_) => "memory",
            SessionStore::Redis(_) => "redis",
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            SessionStore::Memory($s) => $e.await,
            SessionStore::Redis($s) => $e.await,
        }
    };
}

impl Store for SessionStore {
    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.ping())
    }
    async fn heartbeat(&self, node: &NodeInfo) -> Result<(), StoreError> {
        delegate!(self, s => s.heartbeat(node))
    }
    async fn live_nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        delegate!(self, s => s.live_nodes())
    }
    async fn remove_node(&self, node_id: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.remove_node(node_id))
    }
    async fn claim_room(&self, room: &str, node_id: &str) -> Result<String, StoreError> {
        delegate!(self, s => s.claim_room(room, node_id))
    }
    async fn room_node(&self, room: &str) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.room_node(room))
    }
    async fn refresh_room(&self, room: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.refresh_room(room))
    }
    async fn release_room(&self, room: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.release_room(room))
    }
    async fn put_participant(&self, room: &str, p: &ParticipantRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.put_participant(room, p))
    }
    async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.remove_participant(room, identity))
    }
    async fn participants(&self, room: &str) -> Result<Vec<ParticipantRecord>, StoreError> {
        delegate!(self, s => s.participants(room))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, load: u32) -> NodeInfo {
        NodeInfo { node_id: id.into(), url: String::new(), media_addrs: vec![], load }
    }

    #[test]
    fn select_node_prefers_least_loaded_then_lowest_id() {
        assert_eq!(select_node(&[]), None);
        let nodes = [node("b", 3), node("a", 5), node("c", 3)];
        assert_eq!(select_node(&nodes).map(|n| n.node_id.as_str()), Some("b"));
    }
}
