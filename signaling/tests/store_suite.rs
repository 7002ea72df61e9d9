//! One suite, both session stores: the in-process one and real Redis (`JIEFEN_TEST_REDIS_URL`).

use jiefen_signaling::store::{NodeInfo, ParticipantRecord, select_node};
use jiefen_signaling::{MemoryStore, RedisStore, Role, Store};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", rand::random::<u32>())
}

fn node(id: &str, load: u32) -> NodeInfo {
    NodeInfo { node_id: id.into(), url: format!("http://{id}"), media_addrs: vec!["127.0.0.1:7880".into()], load }
}

fn participant(identity: &str, node_id: &str) -> ParticipantRecord {
    ParticipantRecord { identity: identity.into(), name: "张三".into(), role: Role::Party, node_id: node_id.into(), state: "joined".into() }
}

async fn suite<S: Store>(store: &S) {
    store.ping().await.expect("ping");

    // Nodes: heartbeats register them, the least loaded is chosen.
    let a = unique("node-a");
    let b = unique("node-b");
    store.heartbeat(&node(&a, 5)).await.expect("heartbeat a");
    store.heartbeat(&node(&b, 1)).await.expect("heartbeat b");
    let live = store.live_nodes().await.expect("live");
    let ours: Vec<NodeInfo> = live.into_iter().filter(|n| n.node_id == a || n.node_id == b).collect();
    assert_eq!(ours.len(), 2);
    assert_eq!(select_node(&ours).map(|n| n.node_id.clone()), Some(b.clone()));

    // A room whose host is not a live node is taken over.
    let orphan = unique("orphan");
    let ghost = unique("ghost-node");
    assert_eq!(store.claim_room(&orphan, &ghost).await.expect("claim"), ghost, "a first claim always wins");
    assert_eq!(store.claim_room(&orphan, &a).await.expect("take over"), a, "the ghost has no heartbeat");
    store.release_room(&orphan).await.expect("release");
    // A node that leaves stops being live at once.
    let c = unique("node-c");
    store.heartbeat(&node(&c, 0)).await.expect("heartbeat c");
    store.remove_node(&c).await.expect("remove");
    assert!(!store.live_nodes().await.expect("live").iter().any(|n| n.node_id == c));

    // Rooms: the first claim wins, later claims learn the owner.
    let room = unique("room");
    assert_eq!(store.room_node(&room).await.expect("get"), None);
    assert_eq!(store.claim_room(&room, &a).await.expect("claim"), a);
    assert_eq!(store.claim_room(&room, &b).await.expect("claim again"), a);
    assert_eq!(store.room_node(&room).await.expect("get"), Some(a.clone()));
    store.refresh_room(&room).await.expect("refresh");

    // Participants.
    store.put_participant(&room, &participant("zhang", &a)).await.expect("put");
    store.put_participant(&room, &participant("li", &a)).await.expect("put");
    let mut updated = participant("zhang", &a);
    updated.state = "reconnecting".into();
    store.put_participant(&room, &updated).await.expect("update");
    let ps = store.participants(&room).await.expect("list");
    assert_eq!(ps.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), vec!["li", "zhang"]);
    assert_eq!(ps[1].state, "reconnecting");
    store.remove_participant(&room, "li").await.expect("remove");
    assert_eq!(store.participants(&room).await.expect("list").len(), 1);

    // Release drops the room and its participants; another node may claim it then.
    store.release_room(&room).await.expect("release");
    assert_eq!(store.room_node(&room).await.expect("get"), None);
    assert!(store.participants(&room).await.expect("list").is_empty());
    assert_eq!(store.claim_room(&room, &b).await.expect("claim"), b);
    store.release_room(&room).await.expect("release");
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite(&MemoryStore::default()).await;
}

#[tokio::test]
async fn redis_store_passes_the_suite() {
    let Ok(url) = std::env::var("JIEFEN_TEST_REDIS_URL") else {
        assert!(std::env::var("JIEFEN_REQUIRE_SERVICES").is_err(), "JIEFEN_TEST_REDIS_URL is required");
        eprintln!("SKIPPED: no JIEFEN_TEST_REDIS_URL");
        return;
    };
    let store = RedisStore::connect(&url).await.expect("connect");
    suite(&store).await;
}

#[tokio::test]
async fn unreachable_redis_fails_fast_with_a_clear_error() {
    let started = std::time::Instant::now();
    let err = match RedisStore::connect("redis://127.0.0.1:1/").await {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("unavailable"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}
