//! CPU seconds per minute of a composed four-party session on this machine.
//! `scripts/bench-composite.sh [SECONDS]` (default 60): makes four camera tracks (640x480 VP8,
//! 30 fps) and four microphone tracks (Opus) with FFmpeg, composes them, prints the figures.

use std::process::Command;
use std::time::Instant;

use jiefen_composer::{Input, Options, compose};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0) + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let secs: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("jiefen-bench-composite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sources = ["testsrc", "smptebars", "rgbtestsrc", "testsrc2"];
    let mut inputs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let cam = dir.join(format!("{i}-cam.webm"));
        let mic = dir.join(format!("{i}-mic.webm"));
        let run = |args: &[&str]| {
            let ok = Command::new("ffmpeg").args(["-loglevel", "error", "-y"]).args(args).status().map(|s| s.success()).unwrap_or(false);
            assert!(ok, "ffmpeg {args:?}");
        };
        run(&["-f", "lavfi", "-i", &format!("{src}=size=640x480:rate=30:duration={secs}"), "-pix_fmt", "yuv420p", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k", cam.to_str().unwrap_or_default()]);
        run(&["-f", "lavfi", "-i", &format!("sine=frequency={}:sample_rate=48000:duration={secs}", 220 * (i + 1)), "-c:a", "libopus", mic.to_str().unwrap_or_default()]);
        inputs.push(Input { path: cam, start_ms: 0, name: format!("参与者{}", i + 1) });
        inputs.push(Input { path: mic, start_ms: 0, name: format!("参与者{}", i + 1) });
    }
    let out = dir.join("composite.mp4");
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let report = compose(&inputs, i64::from(secs) * 1000, &out, &Options::default(), |_| {}).expect("compose");
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let minutes = f64::from(secs) / 60.0;
    println!("four-party composite, {secs} s of session, 1280x720 25 fps H.264 (veryfast, crf 27) + AAC:");
    println!("  {:.1} CPU s ({:.1} CPU s per minute of session), {:.1} s wall ({:.2}x real time), {} video frames, {} KiB",
        cpu, cpu / minutes, wall, f64::from(secs) / wall, report.video_frames, std::fs::metadata(&out).map(|m| m.len() / 1024).unwrap_or(0));
    let _ = std::fs::remove_dir_all(&dir);
}
