//! `jiefen-loadtest`: N rooms of synthetic participants against a running jiefen server.
//!
//!   jiefen-loadtest --url http://127.0.0.1:8080 --token-secret S --rooms 10 --publishers 2 \
//!       --subscribers 0 --duration 30s --server-pid $(pidof jiefen)
//!
//! Every participant publishes (if a publisher) synthetic Opus-sized audio and VP8-sized video
//! and subscribes to everyone else in its room. Prints a summary and a JSON report; exits 1 when
//! a threshold given on the command line is missed.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use jiefen_loadtest::{Participant, ParticipantConfig, procstat};
use jiefen_signaling::{Role, TokenKey, TokenRequest};

#[derive(Parser)]
#[command(name = "jiefen-loadtest", about = "Synthetic WebRTC participants against a jiefen server")]
struct Args {
    /// Server base URL(s); participants join through them in turn.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    url: Vec<String>,
    /// The server's join-token secret (JIEFEN_TOKEN_SECRET); or --data-dir to read token.key.
    #[arg(long, env = "JIEFEN_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Participants per room that publish audio and video (and subscribe).
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Participants per room that only subscribe.
    #[arg(long, default_value_t = 0)]
    subscribers: usize,
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Video packets per second per publisher and their payload size.
    #[arg(long, default_value_t = 150)]
    video_pps: u32,
    #[arg(long, default_value_t = 1100)]
    video_bytes: usize,
    /// Sample this process's CPU and memory (the jiefen server).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Fail unless at least this fraction of expected packets arrived (0..1).
    #[arg(long)]
    min_delivery: Option<f64>,
    /// Fail if the median join-to-first-packet time exceeds this.
    #[arg(long, value_parser = humantime::parse_duration)]
    max_join: Option<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secret = match (&args.token_secret, &args.data_dir) {
        (Some(s), _) => s.as_bytes().to_vec(),
        (None, Some(d)) => std::fs::read_to_string(d.join("token.key")).context("reading token.key")?.trim().as_bytes().to_vec(),
        (None, None) => anyhow::bail!("give --token-secret or --data-dir"),
    };
    let key = TokenKey::from_secret(&secret);
    let per_room = args.publishers + args.subscribers;
    let before = args.server_pid.and_then(procstat::sample);
    let t0 = Instant::now();
    let mut people = Vec::new();
    for r in 0..args.rooms {
        for i in 0..per_room {
            let identity = format!("lt{r}-{i}");
            let token = key.mint(&TokenRequest {
                room: format!("loadtest-{r}"),
                identity: identity.clone(),
                name: identity.clone(),
                role: if i == 0 { Role::Mediator } else { Role::Official },
                lobby: false,
                ttl: Duration::from_secs(3600),
                case_id: None,
            })?;
            let publishes = i < args.publishers;
            people.push((r, Participant::spawn(ParticipantConfig {
                entry_urls: args.url.clone(),
                token,
                identity,
                publish_audio: publishes,
                publish_video: publishes,
                video_packet_bytes: args.video_bytes,
                video_packets_per_second: args.video_pps,
            })));
        }
    }
    tokio::time::sleep(args.duration).await;
    let elapsed = t0.elapsed();
    let after = args.server_pid.and_then(procstat::sample);
    // Per subscriber and publisher: expected packets ≈ (audio 50/s + video pps) × time since it joined.
    let mut received_packets = 0u64;
    let mut corrupt = 0u64;
    let mut delay_sum = 0u64;
    let mut streams = 0u64;
    let mut first_packet_ms = Vec::new();
    for (_, p) in &people {
        let snap = p.snapshot();
        for r in snap.values() {
            received_packets += r.packets;
            corrupt += r.corrupt;
            delay_sum += r.delay_sum_us;
            streams += u64::from(r.audio_packets > 0) + u64::from(r.video_packets > 0);
        }
        if let (Some(start), Some(first)) = (p.stats.lock().ok().and_then(|s| s.started_at), snap.values().filter_map(|r| r.first_at).min()) {
            first_packet_ms.push(first.duration_since(start).as_millis() as u64);
        }
    }
    let expected_streams = (args.rooms * args.publishers * (per_room - 1) * 2) as u64;
    let expected_packets = (args.rooms * args.publishers * (per_room - 1)) as f64 * (50.0 + f64::from(args.video_pps)) * elapsed.as_secs_f64();
    let delivery = if expected_packets > 0.0 { received_packets as f64 / expected_packets } else { 1.0 };
    first_packet_ms.sort_unstable();
    let median_join = first_packet_ms.get(first_packet_ms.len() / 2).copied();
    let server = match (before, after) {
        (Some(b), Some(a)) => Some(((a.cpu - b.cpu).as_secs_f64(), a.rss)),
        _ => None,
    };
    let forwarded_video_streams = (args.rooms * args.publishers * (per_room - 1)) as f64;
    println!("jiefen-loadtest: {} rooms × ({} publishers + {} subscribers), {:.1} s", args.rooms, args.publishers, args.subscribers, elapsed.as_secs_f64());
    println!("  streams receiving        {streams} of {expected_streams}");
    println!("  packets received         {received_packets} ({:.1}% of expected), corrupt {corrupt}", delivery * 100.0);
    if received_packets > 0 {
        println!("  mean one-way delay       {:.2} ms", delay_sum as f64 / received_packets as f64 / 1000.0);
    }
    if let Some(m) = median_join {
        println!("  join → first packet      median {m} ms (n = {})", first_packet_ms.len());
    }
    if let Some((cpu, rss)) = server {
        println!("  server CPU               {:.2} s = {:.1}% of one core", cpu, cpu / elapsed.as_secs_f64() * 100.0);
        println!("  server CPU per video stream forwarded  {:.2}% of a core", cpu / elapsed.as_secs_f64() * 100.0 / forwarded_video_streams.max(1.0));
        println!("  server RSS               {:.1} MiB ({:.2} MiB per participant)", rss as f64 / 1048576.0, rss as f64 / 1048576.0 / people.len() as f64);
    }
    let report = serde_json::json!({
        "rooms": args.rooms, "publishers": args.publishers, "subscribers": args.subscribers,
        "seconds": elapsed.as_secs_f64(), "streams": streams, "expected_streams": expected_streams,
        "packets_received": received_packets, "delivery": delivery, "corrupt": corrupt,
        "mean_delay_ms": if received_packets > 0 { delay_sum as f64 / received_packets as f64 / 1000.0 } else { 0.0 },
        "median_join_ms": median_join,
        "server_cpu_seconds": server.map(|s| s.0), "server_rss_bytes": server.map(|s| s.1),
    });
    println!("{report}");
    for (_, p) in people {
        p.stop().await;
    }
    let mut failed = false;
    if let Some(min) = args.min_delivery && delivery < min {
        eprintln!("jiefen-loadtest: delivery {:.3} below {min}", delivery);
        failed = true;
    }
    if let (Some(max), Some(m)) = (args.max_join, median_join) && Duration::from_millis(m) > max {
        eprintln!("jiefen-loadtest: median join {m} ms above {}", max.as_millis());
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
