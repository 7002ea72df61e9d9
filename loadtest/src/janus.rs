//! The same synthetic participant against Janus's VideoRoom plugin (REST API, long-poll events),
//! so that both SFUs are measured with the same media, the same peer connections and the same
//! receivers. Each participant joins the room as a publisher (publishing or not, to hear about
//! the others) and holds one multistream subscription to every other publisher.
//!
//! Janus's flow: create a session, attach two VideoRoom handles; `join` as publisher, `publish`
//! with our offer (Janus answers); `join` as subscriber with `streams: [{feed}]` (Janus offers),
//! `start` with our answer; `subscribe` adds feeds later (Janus offers again).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use jiefen_signaling::token::Source;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};

use crate::participant::{Participant, Stats, count_nacks, peer};
use crate::publish::{MediaSpec, SendCounters, outgoing};

#[derive(Debug, Clone)]
pub struct JanusConfig {
    /// The REST endpoint, e.g. `http://127.0.0.1:8088/janus`.
    pub url: String,
    pub room: u64,
    pub identity: String,
    pub publish: bool,
    /// Local address for the peer connections.
    pub bind: String,
    pub media: MediaSpec,
}

pub fn spawn(config: JanusConfig) -> Participant {
    let stats = Arc::new(Mutex::new(Stats { started_at: Some(Instant::now()), ..Stats::default() }));
    let sent = Arc::new(SendCounters::default());
    let (stop, stop_rx) = watch::channel(false);
    let task = {
        let (stats, sent) = (stats.clone(), sent.clone());
        tokio::spawn(async move {
            // As with jiefen: a failed session is retried (a new Janus session), until stopped.
            let mut backoff = Duration::from_millis(250);
            loop {
                match session(&config, &stats, &sent, stop_rx.clone()).await {
                    Ok(()) => return,
                    Err(e) => {
                        if let Ok(mut s) = stats.lock() {
                            s.errors.push(format!("{e:#}"));
                        }
                    }
                }
                let mut stop = stop_rx.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                if *stop_rx.borrow() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        })
    };
    Participant::from_parts(stats, sent, stop, task)
}

struct Api {
    http: reqwest::Client,
    url: String,
    session: u64,
}

fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Api {
    async fn post(http: &reqwest::Client, url: &str, mut body: Value) -> anyhow::Result<Value> {
        body["transaction"] = json!(transaction());
        let reply: Value = http.post(url).json(&body).send().await.context("Janus REST request")?.json().await?;
        if reply["janus"] == "error" {
            bail!("Janus error: {}", reply["error"]);
        }
        Ok(reply)
    }

    async fn create(http: reqwest::Client, url: &str) -> anyhow::Result<Api> {
        let reply = Api::post(&http, url, json!({"janus": "create"})).await?;
        let session = reply["data"]["id"].as_u64().context("no session id")?;
        Ok(Api { http, url: url.trim_end_matches('/').to_string(), session })
    }

    async fn attach(&self) -> anyhow::Result<u64> {
        let reply = Api::post(&self.http, &format!("{}/{}", self.url, self.session), json!({"janus": "attach", "plugin": "janus.plugin.videoroom"})).await?;
        reply["data"]["id"].as_u64().context("no handle id")
    }

    /// A plugin request; synchronous ones return the plugin's data, asynchronous ones `ack`.
    async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> anyhow::Result<Value> {
        let mut m = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        Api::post(&self.http, &format!("{}/{}/{}", self.url, self.session, handle), m).await
    }

    async fn trickle_done(&self, handle: u64) -> anyhow::Result<()> {
        Api::post(&self.http, &format!("{}/{}/{}", self.url, self.session, handle), json!({"janus": "trickle", "candidate": {"completed": true}})).await?;
        Ok(())
    }

    /// Long-polls events into `tx` until the receiver is gone.
    fn poll_events(&self, tx: mpsc::UnboundedSender<Value>) -> tokio::task::JoinHandle<()> {
        let (http, url) = (self.http.clone(), format!("{}/{}?maxev=10", self.url, self.session));
        tokio::spawn(async move {
            while !tx.is_closed() {
                let Ok(r) = http.get(&url).send().await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                match r.json::<Value>().await {
                    Ok(Value::Array(events)) => events.into_iter().for_each(|e| drop(tx.send(e))),
                    Ok(e) => drop(tx.send(e)),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
    }

    async fn destroy(&self) {
        let _ = Api::post(&self.http, &format!("{}/{}", self.url, self.session), json!({"janus": "destroy"})).await;
    }
}

/// Per m-section of an SDP: its mid and its msid track id.
fn mid_to_track(sdp: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let (mut mid, mut track) = (None::<String>, None::<String>);
    let mut flush = |mid: &mut Option<String>, track: &mut Option<String>| {
        if let (Some(m), Some(t)) = (mid.take(), track.take()) {
            out.insert(m, t);
        }
    };
    for line in sdp.lines() {
        if line.starts_with("m=") {
            flush(&mut mid, &mut track);
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.trim().to_string());
        } else if let Some(ms) = line.strip_prefix("a=msid:") {
            track = ms.split_whitespace().nth(1).map(str::to_string);
        }
    }
    flush(&mut mid, &mut track);
    out
}

/// Our local description once it lists a candidate (Janus is a full ICE agent and needs one,
/// or learns us as peer-reflexive from our checks).
async fn local_sdp(pc: &Arc<dyn PeerConnection>) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let sdp = pc.local_description().await.context("no local description")?.sdp;
        if sdp.contains("a=candidate") || Instant::now() > deadline {
            return Ok(sdp);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn plugin_data(event: &Value) -> &Value {
    &event["plugindata"]["data"]
}

async fn session(config: &JanusConfig, stats: &Arc<Mutex<Stats>>, sent: &Arc<SendCounters>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(40)).build()?;
    let api = Api::create(http, &config.url).await?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = api.poll_events(events_tx);
    let result = run_session(config, stats, sent, &mut stop, &api, &mut events).await;
    api.destroy().await;
    poller.abort();
    result
}

async fn run_session(
    config: &JanusConfig,
    stats: &Arc<Mutex<Stats>>,
    sent: &Arc<SendCounters>,
    stop: &mut watch::Receiver<bool>,
    api: &Api,
    events: &mut mpsc::UnboundedReceiver<Value>,
) -> anyhow::Result<()> {
    let pub_handle = api.attach().await?;
    let sub_handle = api.attach().await?;
    let created = api
        .message(pub_handle, json!({"request": "create", "room": config.room, "publishers": 100, "bitrate": 4_000_000, "videocodec": "vp8", "audiocodec": "opus"}), None)
        .await?;
    let code = plugin_data(&created)["error_code"].as_u64();
    if code.is_some_and(|c| c != 427) {
        bail!("creating the room: {}", plugin_data(&created));
    }
    api.message(pub_handle, json!({"request": "join", "ptype": "publisher", "room": config.room, "display": config.identity}), None).await?;
    // Feed id → display name, of the other publishers.
    let mut feeds: HashMap<u64, String> = HashMap::new();
    let my_feed = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.context("no `joined` from Janus in 10 s")?.context("event poller stopped")?;
        let data = plugin_data(&e);
        if e["sender"].as_u64() == Some(pub_handle) && data["videoroom"] == "joined" {
            add_feeds(&mut feeds, &data["publishers"]);
            break data["id"].as_u64().context("no feed id")?;
        }
    };
    let publishers = Arc::new(Mutex::new(HashMap::new()));
    let mut outs = outgoing(config.publish, config.publish, &config.media);
    let (pub_pc, mut pub_states) = peer(&config.bind, stats, &publishers).await.context("publisher peer connection")?;
    if config.publish {
        for o in &outs {
            pub_pc.add_track(o.track.clone() as Arc<dyn TrackLocal>).await?;
        }
        let offer = pub_pc.create_offer(None).await.context("offer")?;
        pub_pc.set_local_description(offer).await.context("local offer")?;
        let sdp = local_sdp(&pub_pc).await?;
        let sending: Vec<String> = jiefen_media::sdp::media_sections(&sdp).into_iter().filter(|(_, d)| d == "sendrecv" || d == "sendonly").map(|(m, _)| m).collect();
        for (o, mid) in outs.iter_mut().zip(sending) {
            o.mid = Some(mid);
        }
        api.message(pub_handle, json!({"request": "publish", "display": config.identity}), Some(json!({"type": "offer", "sdp": sdp}))).await?;
        api.trickle_done(pub_handle).await?;
        let answer = loop {
            let e = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.context("no answer from Janus in 10 s")?.context("event poller stopped")?;
            if e["sender"].as_u64() == Some(pub_handle) {
                if let Some(sdp) = e["jsep"]["sdp"].as_str() {
                    break sdp.to_string();
                }
                if let Some(err) = plugin_data(&e)["error"].as_str() {
                    bail!("publish refused: {err}");
                }
                add_feeds(&mut feeds, &plugin_data(&e)["publishers"]);
            }
        };
        pub_pc.set_remote_description(RTCSessionDescription::answer(answer)?).await?;
        for o in &outs {
            o.serve_keyframe_requests(sent.clone());
        }
    }
    let (sub_pc, _sub_states) = peer(&config.bind, stats, &publishers).await.context("subscriber peer connection")?;
    if let Ok(mut s) = stats.lock() {
        s.joins += 1;
        s.joined_at.get_or_insert(Instant::now());
    }
    let mut subscribed: HashSet<u64> = HashSet::new();
    let mut subscription_started = false;
    let mut awaiting_offer = false;
    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    let mut video_tick = tokio::time::interval(config.media.video_interval());
    let mut connected = !config.publish;
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let result = loop {
        // Subscribe to publishers not yet held, one request in flight at a time.
        let missing: Vec<u64> = feeds.keys().filter(|f| **f != my_feed && !subscribed.contains(f)).copied().collect();
        if !missing.is_empty() && !awaiting_offer {
            let streams: Vec<Value> = missing.iter().map(|f| json!({"feed": f})).collect();
            let body = if subscription_started {
                json!({"request": "subscribe", "streams": streams})
            } else {
                json!({"request": "join", "ptype": "subscriber", "room": config.room, "streams": streams, "private_id": my_feed})
            };
            api.message(sub_handle, body, None).await?;
            subscribed.extend(missing);
            subscription_started = true;
            awaiting_offer = true;
        }
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            _ = tokio::time::sleep_until(connect_deadline), if !connected => {
                break Err(anyhow!("media connection to Janus not established in 10 s"));
            }
            s = pub_states.recv(), if config.publish => match s {
                Some(RTCPeerConnectionState::Connected) => {
                    connected = true;
                    if let Ok(mut s) = stats.lock() { s.connected_at = Some(Instant::now()); }
                }
                Some(RTCPeerConnectionState::Failed) => break Err(anyhow!("media connection to Janus failed")),
                _ => {}
            },
            _ = audio_tick.tick(), if connected && config.publish => {
                for o in outs.iter_mut().filter(|o| o.source == Source::Microphone) {
                    o.tick_audio(&config.media, sent).await;
                }
            }
            _ = video_tick.tick(), if connected && config.publish => {
                for o in outs.iter_mut().filter(|o| o.source == Source::Camera) {
                    o.tick_video(&config.media, sent).await;
                }
            }
            e = events.recv() => {
                let Some(e) = e else { break Err(anyhow!("event poller stopped")) };
                let data = plugin_data(&e);
                if e["sender"].as_u64() == Some(pub_handle) {
                    add_feeds(&mut feeds, &data["publishers"]);
                    for key in ["unpublished", "leaving"] {
                        if let Some(gone) = data[key].as_u64() {
                            feeds.remove(&gone);
                            subscribed.remove(&gone);
                        }
                    }
                } else if e["sender"].as_u64() == Some(sub_handle) {
                    if let Some(err) = data["error"].as_str() {
                        if let Ok(mut s) = stats.lock() { s.errors.push(format!("subscription: {err}")); }
                        awaiting_offer = false;
                    }
                    if let Some(offer) = e["jsep"]["sdp"].as_str() {
                        // Which publisher each m-line carries, for the receivers' records.
                        let names: HashMap<String, String> = data["streams"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| Some((s["mid"].as_str()?.to_string(), s["feed_display"].as_str()?.to_string())))
                            .collect();
                        if let Ok(mut m) = publishers.lock() {
                            for (mid, track) in mid_to_track(offer) {
                                if let Some(name) = names.get(&mid) {
                                    m.insert(track, name.clone());
                                }
                            }
                        }
                        sub_pc.set_remote_description(RTCSessionDescription::offer(offer.to_string())?).await?;
                        let answer = sub_pc.create_answer(None).await?;
                        sub_pc.set_local_description(answer).await?;
                        let sdp = local_sdp(&sub_pc).await?;
                        api.message(sub_handle, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": sdp}))).await?;
                        api.trickle_done(sub_handle).await?;
                        awaiting_offer = false;
                    }
                }
            }
        }
    };
    count_nacks(&sub_pc, stats).await;
    let _ = pub_pc.close().await;
    let _ = sub_pc.close().await;
    result
}

fn add_feeds(feeds: &mut HashMap<u64, String>, list: &Value) {
    for p in list.as_array().into_iter().flatten() {
        if let Some(id) = p["id"].as_u64() {
            feeds.insert(id, p["display"].as_str().unwrap_or_default().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mids_map_to_msid_tracks() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:janus janus0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:janus janus1\r\nm=application 9 x\r\na=mid:2\r\n";
        let m = mid_to_track(sdp);
        assert_eq!(m.get("0").map(String::as_str), Some("janus0"));
        assert_eq!(m.get("1").map(String::as_str), Some("janus1"));
        assert_eq!(m.len(), 2);
    }
}
