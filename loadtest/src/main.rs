//! `jiefen-loadtest`: rooms of synthetic WebRTC participants against a running jiefen server, or
//! against Janus's VideoRoom plugin with the same media and measurements.
//!
//!   jiefen-loadtest --url http://127.0.0.1:8080 --data-dir data --scenario broadcast \
//!       --duration 60s --server-pid $(pidof jiefen)
//!   jiefen-loadtest --janus http://127.0.0.1:8088/janus --scenario mesh6 --server-pid $(pidof janus)
//!
//! Publishers loop pre-encoded VP8 (three simulcast layers) and Opus from fixtures made by FFmpeg
//! (or synthetic payloads with `--media synthetic`) and answer keyframe requests and NACKs;
//! everyone subscribes to everyone else in its room. Prints a summary table and a JSON report
//! (`--json`), draws a chart (`--chart out.png`), and exits 1 when a threshold is missed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use jiefen_loadtest::fixture::{self, Fixture};
use jiefen_loadtest::report::{Report, Sample, Thresholds, Totals};
use jiefen_loadtest::{MediaSpec, Participant, ParticipantConfig, janus, procstat};
use jiefen_signaling::{Role, TokenKey, TokenRequest};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Scenario {
    /// `--rooms` one-to-one rooms (2 publishers each).
    OneToOne,
    /// One room: one publisher, `--subscribers` subscribers (default 10).
    Broadcast,
    /// `--rooms` rooms of 6, everyone publishing.
    Mesh6,
    /// Rooms of `--publishers` + `--subscribers`; every `--churn-every` one participant leaves and
    /// a new one joins (default: 10 minutes).
    Churn,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Media {
    Fixtures,
    Synthetic,
}

#[derive(Parser)]
#[command(name = "jiefen-loadtest", about = "Synthetic WebRTC participants against jiefen (or Janus)")]
struct Args {
    /// jiefen base URL(s); participants join through them in turn.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    url: Vec<String>,
    /// Drive Janus's VideoRoom plugin at this REST URL instead (e.g. http://127.0.0.1:8088/janus).
    #[arg(long)]
    janus: Option<String>,
    /// The address the participants' peer connections bind (Janus runs need 127.0.0.2, see
    /// scripts/bench-vs-janus.sh).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: String,
    /// The jiefen server's join-token secret (JIEFEN_TOKEN_SECRET); or --data-dir to read token.key.
    #[arg(long, env = "JIEFEN_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A shipped scenario; sets rooms/publishers/subscribers unless given.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    #[arg(long)]
    rooms: Option<usize>,
    /// Participants per room that publish audio and video (and subscribe).
    #[arg(long)]
    publishers: Option<usize>,
    /// Participants per room that only subscribe.
    #[arg(long)]
    subscribers: Option<usize>,
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Replace one participant (leave, a new one joins) this often.
    #[arg(long, value_parser = humantime::parse_duration)]
    churn_every: Option<Duration>,
    #[arg(long, value_enum, default_value = "fixtures")]
    media: Media,
    /// Where the fixture files are (made with FFmpeg when missing).
    #[arg(long, default_value = "target/loadtest-fixtures")]
    fixtures: PathBuf,
    /// Synthetic media: video packets per second per publisher and their payload size.
    #[arg(long, default_value_t = 150)]
    video_pps: u32,
    #[arg(long, default_value_t = 1100)]
    video_bytes: usize,
    /// Sample this process's CPU and memory (the server under test).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the JSON report here (it is always printed as the last line too).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw bitrate, loss and server CPU over time into this PNG.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Fail unless at least this fraction of the packets sent towards subscribers arrived (0..1).
    #[arg(long)]
    min_delivery: Option<f64>,
    /// Fail unless every expected stream received media.
    #[arg(long)]
    all_streams: bool,
    /// Fail if the median join → first video key frame exceeds this.
    #[arg(long, value_parser = humantime::parse_duration)]
    max_join: Option<Duration>,
    /// Fail if the mean one-way delay exceeds this many milliseconds.
    #[arg(long)]
    max_delay_ms: Option<f64>,
    /// Fail on any corrupt payload.
    #[arg(long)]
    no_corrupt: bool,
    /// A label for the report (e.g. the server's name).
    #[arg(long)]
    label: Option<String>,
    /// Messages per second each participant sends on the room data channel (relayed by the
    /// SFU to everyone in the room); 0 opens no data channel. jiefen only.
    #[arg(long, default_value_t = 0)]
    data_rate: u32,
    /// Fail if fewer relayed data channel messages arrive than this share of those sent times
    /// the others in the room.
    #[arg(long)]
    min_data_delivery: Option<f64>,
}

struct Plan {
    rooms: usize,
    publishers: usize,
    subscribers: usize,
    duration: Duration,
    churn_every: Option<Duration>,
}

fn plan(a: &Args) -> Plan {
    let (rooms, publishers, subscribers, duration) = match a.scenario {
        Some(Scenario::OneToOne) => (8, 2, 0, 30),
        Some(Scenario::Broadcast) => (1, 1, 10, 30),
        Some(Scenario::Mesh6) => (1, 6, 0, 30),
        Some(Scenario::Churn) => (2, 4, 2, 600),
        None => (1, 2, 0, 20),
    };
    let churn_default = (a.scenario == Some(Scenario::Churn)).then_some(Duration::from_secs(1));
    Plan {
        rooms: a.rooms.unwrap_or(rooms),
        publishers: a.publishers.unwrap_or(publishers),
        subscribers: a.subscribers.unwrap_or(subscribers),
        duration: a.duration.unwrap_or(Duration::from_secs(duration)),
        churn_every: a.churn_every.or(churn_default),
    }
}

/// Makes participants for one target.
struct Spawner {
    key: Option<TokenKey>,
    urls: Vec<String>,
    janus: Option<String>,
    bind: String,
    media: MediaSpec,
    data_per_second: u32,
}

impl Spawner {
    fn spawn(&self, room: usize, identity: &str, publishes: bool, host: bool) -> anyhow::Result<Participant> {
        if let Some(url) = &self.janus {
            return Ok(janus::spawn(janus::JanusConfig {
                url: url.clone(),
                room: 7000 + room as u64,
                identity: identity.to_string(),
                publish: publishes,
                bind: self.bind.clone(),
                media: self.media.clone(),
            }));
        }
        let key = self.key.as_ref().context("no token key")?;
        let token = key.mint(&TokenRequest {
            room: format!("loadtest-{room}"),
            identity: identity.to_string(),
            name: identity.to_string(),
            role: if host { Role::Mediator } else { Role::Official },
            lobby: false,
            ttl: Duration::from_secs(3600),
            case_id: None,
        })?;
        Ok(Participant::spawn(ParticipantConfig {
            entry_urls: self.urls.clone(),
            token,
            identity: identity.to_string(),
            publish_audio: publishes,
            publish_video: publishes,
            media: self.media.clone(),
            data_per_second: self.data_per_second,
        }))
    }
}

/// How long a new participant has to receive media before a run counts its streams.
const SETTLE: Duration = Duration::from_secs(5);

struct Seat {
    room: usize,
    publishes: bool,
    participant: Participant,
    spawned_at: Instant,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = plan(&args);
    let key = if args.janus.is_some() {
        None
    } else {
        let secret = match (&args.token_secret, &args.data_dir) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(d)) => std::fs::read_to_string(d.join("token.key")).context("reading token.key")?.trim().as_bytes().to_vec(),
            (None, None) => anyhow::bail!("give --token-secret or --data-dir (or --janus URL)"),
        };
        Some(TokenKey::from_secret(&secret))
    };
    let media = match args.media {
        Media::Synthetic => MediaSpec::Synthetic { bytes: args.video_bytes, packets_per_second: args.video_pps },
        Media::Fixtures => {
            fixture::ensure(&args.fixtures)?;
            MediaSpec::Fixture(Arc::new(Fixture::load(&args.fixtures)?))
        }
    };
    let spawner = Spawner { key, urls: args.url.clone(), janus: args.janus.clone(), bind: args.bind.clone(), media, data_per_second: args.data_rate };
    let per_room = plan.publishers + plan.subscribers;
    let before = args.server_pid.and_then(procstat::sample);
    let t0 = Instant::now();
    let mut seats: Vec<Seat> = Vec::new();
    let mut generation = 0usize;
    for r in 0..plan.rooms {
        for i in 0..per_room {
            let publishes = i < plan.publishers;
            let participant = spawner.spawn(r, &format!("lt{r}-{i}"), publishes, i == 0)?;
            seats.push(Seat { room: r, publishes, participant, spawned_at: Instant::now() });
        }
    }
    let mut report = Report::new(args.label.clone().unwrap_or_else(|| if args.janus.is_some() { "janus".into() } else { "jiefen".into() }));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut churn = plan.churn_every.map(tokio::time::interval);
    let mut leaving = Vec::new();
    let deadline = t0 + plan.duration;
    let mut rss_first = None;
    let mut departed = Totals::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => break,
            _ = tick.tick() => {
                let server = args.server_pid.and_then(procstat::sample);
                if rss_first.is_none() && t0.elapsed() > Duration::from_secs(5) {
                    rss_first = server.map(|s| s.rss);
                }
                report.samples.push(Sample::take(t0, seats.iter().map(|s| &s.participant), departed, server));
            }
            _ = async { match churn.as_mut() { Some(c) => { c.tick().await; } None => std::future::pending().await } } => {
                // The first tick is immediate: let the room fill first.
                if t0.elapsed() < Duration::from_secs(5) || seats.is_empty() {
                    continue;
                }
                let i = rand::random_range(0..seats.len());
                generation += 1;
                let (room, publishes) = (seats[i].room, seats[i].publishes);
                let fresh = spawner.spawn(room, &format!("lt{room}-c{generation}"), publishes, false)?;
                let old = std::mem::replace(&mut seats[i], Seat { room, publishes, participant: fresh, spawned_at: Instant::now() });
                report.add_departed(&old.participant, old.spawned_at);
                departed.add(Totals::of(&old.participant));
                leaving.push(tokio::spawn(old.participant.stop()));
            }
        }
    }
    let elapsed = t0.elapsed();
    let after = args.server_pid.and_then(procstat::sample);
    // Everyone receives the audio and video of the other publishers in its room. A seat taken
    // in the last seconds (churn) may not have media yet: it is not expected to, nor its media
    // expected by the others.
    let settled = |s: &Seat| s.spawned_at.elapsed() >= SETTLE;
    for (i, s) in seats.iter().enumerate() {
        let others = seats.iter().enumerate().filter(|(j, o)| *j != i && o.room == s.room && o.publishes && settled(o)).count();
        let expected = if settled(s) { others * 2 } else { 0 };
        report.add_seat(&s.participant, s.spawned_at, expected);
    }
    report.finish(elapsed, plan.rooms, plan.publishers, plan.subscribers, seats.len(), before, after, rss_first);
    for s in seats {
        s.participant.stop().await;
    }
    for l in leaving {
        let _ = l.await;
    }
    print!("{}", report.table());
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.chart {
        jiefen_loadtest::chart::draw(&report, path)?;
        println!("chart written to {}", path.display());
    }
    println!("{json}");
    let failures = report.check(&Thresholds {
        min_delivery: args.min_delivery,
        all_streams: args.all_streams,
        max_join: args.max_join,
        max_delay_ms: args.max_delay_ms,
        no_corrupt: args.no_corrupt,
        min_data_delivery: args.min_data_delivery,
    });
    for f in &failures {
        eprintln!("jiefen-loadtest: {f}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
