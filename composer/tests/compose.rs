//! Composes FFmpeg-made tracks (test patterns and tones, starting at different times) and checks
//! the MP4 with FFmpeg's own probing: H.264 + AAC, the expected duration, every frame decodable,
//! audio and video aligned.

use std::path::Path;
use std::process::Command;

use jiefen_composer::{Input, Options, compose};

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg").args(["-loglevel", "error", "-y"]).args(args).status().expect("ffmpeg is installed (scripts/deps.sh test)");
    assert!(status.success(), "ffmpeg {args:?}");
}

fn probe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json"]).arg(path).output().expect("ffprobe");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn four_tracks_become_one_mp4() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |n: &str| dir.path().join(n);
    let s = |path: &Path| path.to_string_lossy().into_owned();
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=640x480:rate=30:duration=4", "-c:v", "libvpx", "-b:v", "500k", &s(&p("a-cam.webm"))]);
    ffmpeg(&["-f", "lavfi", "-i", "smptebars=size=320x240:rate=15:duration=3", "-c:v", "libvpx", "-b:v", "300k", &s(&p("b-cam.webm"))]);
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4", "-c:a", "libopus", "-ac", "2", &s(&p("a-mic.webm"))]);
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=3", "-c:a", "libopus", "-ac", "1", &s(&p("b-mic.webm"))]);
    let inputs = vec![
        Input { path: p("a-cam.webm"), start_ms: 0, name: "王调解员".into() },
        Input { path: p("a-mic.webm"), start_ms: 0, name: "王调解员".into() },
        Input { path: p("b-cam.webm"), start_ms: 1500, name: "张三: 申请人".into() },
        Input { path: p("b-mic.webm"), start_ms: 1500, name: "张三".into() },
        Input { path: p("missing.webm"), start_ms: 0, name: "gone".into() },
    ];
    let out = std::env::var_os("JIEFEN_KEEP_COMPOSITE").map(std::path::PathBuf::from).unwrap_or_else(|| p("composite.mp4"));
    let mut steps = Vec::new();
    let started = cpu_seconds();
    let report = compose(&inputs, 4500, &out, &Options::default(), |f| steps.push(f)).expect("composes");
    let cpu = cpu_seconds() - started;
    println!("composed 4.5 s of a two-party session in {cpu:.2} CPU s ({:.1} CPU s per minute)", cpu / 4.5 * 60.0);
    assert_eq!((report.tiles, report.audio_inputs), (2, 2), "the unreadable track is left out, not fatal");
    assert!(steps.last().is_some_and(|f| *f >= 1.0) && steps.len() >= 3, "progress is reported: {steps:?}");

    let info = probe(&out);
    let streams = info["streams"].as_array().expect("streams");
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("video");
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").expect("audio");
    assert_eq!((video["codec_name"].as_str(), audio["codec_name"].as_str()), (Some("h264"), Some("aac")));
    assert_eq!((video["width"].as_i64(), video["height"].as_i64()), (Some(1280), Some(720)));
    let duration: f64 = info["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    assert!((duration - 4.5).abs() <= 0.5, "duration {duration}");
    let start = |s: &serde_json::Value| s["start_time"].as_str().and_then(|d| d.parse::<f64>().ok()).unwrap_or(9.9);
    assert!((start(video) - start(audio)).abs() <= 0.08, "audio/video offset {} s", start(video) - start(audio));
    let frames: i64 = video["nb_read_frames"].as_str().and_then(|f| f.parse().ok()).unwrap_or(0);
    assert!((frames - 112).abs() <= 3, "25 fps for 4.5 s: {frames}");
    let errors = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&out).args(["-f", "null", "-"]).output().expect("ffmpeg");
    assert!(errors.status.success() && errors.stderr.is_empty(), "{}", String::from_utf8_lossy(&errors.stderr));
}

#[test]
fn nothing_readable_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = compose(&[Input { path: dir.path().join("none.webm"), start_ms: 0, name: "x".into() }], 1000, &dir.path().join("o.mp4"), &Options::default(), |_| {}).expect_err("empty");
    assert!(err.to_string().contains("nothing to compose"), "{err}");
}

/// This process's user + system CPU time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0) + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}
