//! Pre-encoded media that synthetic publishers loop: VP8 in three simulcast layers
//! (320x180, 640x360, 1280x720 at 30 fps, a key frame every 3 s) and Opus (20 ms frames),
//! made on demand by the FFmpeg CLI from its built-in test sources, so nothing is downloaded
//! and every run sends the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;

/// Seconds of media in each file; publishers loop them.
pub const SECONDS: u32 = 10;
pub const FPS: u32 = 30;
/// Key frame interval in frames (all layers share it, so their key frames line up).
pub const GOP: u32 = 90;

/// The layers, lowest first, as (rid, file, width, height, target bitrate).
pub const LAYERS: [(&str, &str, u32, u32, &str); 3] =
    [("q", "q.ivf", 320, 180, "150k"), ("h", "h.ivf", 640, 360, "500k"), ("f", "f.ivf", 1280, 720, "1500k")];
const AUDIO: &str = "a.ogg";

#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
    pub keyframe: bool,
}

#[derive(Debug)]
pub struct Fixture {
    /// Per simulcast layer (q, h, f): the frames in order.
    pub layers: Vec<Vec<Frame>>,
    /// Opus packets, 20 ms each.
    pub audio: Vec<Bytes>,
}

/// Makes the fixture files in `dir` unless they are all there already.
pub fn ensure(dir: &Path) -> anyhow::Result<()> {
    let files: Vec<PathBuf> = LAYERS.iter().map(|l| dir.join(l.1)).chain([dir.join(AUDIO)]).collect();
    if files.iter().all(|f| f.metadata().is_ok_and(|m| m.len() > 0)) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let seconds = SECONDS.to_string();
    let mut video = Command::new("ffmpeg");
    video.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-t", &seconds, "-i"]);
    video.arg(format!("testsrc2=size=1280x720:rate={FPS}"));
    video.args(["-filter_complex", "[0:v]split=3[f][h0][q0];[h0]scale=640:360[h];[q0]scale=320:180[q]"]);
    let gop = GOP.to_string();
    for (rid, file, _, _, bitrate) in LAYERS {
        video.args(["-map", &format!("[{rid}]"), "-c:v", "libvpx", "-b:v", bitrate, "-g", &gop, "-keyint_min", &gop]);
        // Real-time settings, no alt-ref frames: what a browser's encoder produces.
        video.args(["-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-auto-alt-ref", "0"]);
        video.arg(dir.join(file));
    }
    run(video)?;
    let mut audio = Command::new("ffmpeg");
    audio.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-t", &seconds, "-i"]);
    audio.arg("sine=frequency=440:sample_rate=48000");
    // One 20 ms packet per Ogg page, so that pages are packets.
    audio.args(["-ac", "2", "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-page_duration", "20000"]);
    audio.arg(dir.join(AUDIO));
    run(audio)
}

fn run(mut command: Command) -> anyhow::Result<()> {
    let out = command.output().context("running ffmpeg (install the Debian package ffmpeg)")?;
    if !out.status.success() {
        bail!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Fixture {
    /// Reads the files [`ensure`] made.
    pub fn load(dir: &Path) -> anyhow::Result<Fixture> {
        let mut layers = Vec::new();
        for (_, file, ..) in LAYERS {
            let path = dir.join(file);
            let f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let (mut reader, _) = IVFReader::new(std::io::BufReader::new(f)).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut frames = Vec::new();
            while let Ok((data, _)) = reader.parse_next_frame() {
                // RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame.
                let keyframe = data.first().is_some_and(|b| b & 1 == 0);
                frames.push(Frame { data: data.freeze(), keyframe });
            }
            if frames.first().is_none_or(|f| !f.keyframe) {
                bail!("{}: no frames, or the first is not a key frame", path.display());
            }
            layers.push(frames);
        }
        let path = dir.join(AUDIO);
        let f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let (mut reader, _) = OggReader::new(std::io::BufReader::new(f), true).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut audio = Vec::new();
        while let Ok((page, header)) = reader.parse_next_page() {
            // The comment header page carries no audio.
            if page.starts_with(b"OpusTags") || header.granule_position == 0 {
                continue;
            }
            audio.push(page.freeze());
        }
        if audio.is_empty() {
            bail!("{}: no Opus packets", path.display());
        }
        Ok(Fixture { layers, audio })
    }

    /// The index of the first key frame at or after `from` in a layer (wrapping).
    pub fn next_keyframe(&self, layer: usize, from: usize) -> usize {
        let frames = &self.layers[layer];
        (0..frames.len()).map(|i| (from + i) % frames.len()).find(|&i| frames[i].keyframe).unwrap_or(0)
    }

    /// Mean bitrate of a layer in bits per second.
    pub fn bitrate(&self, layer: usize) -> u64 {
        let bytes: usize = self.layers[layer].iter().map(|f| f.data.len()).sum();
        (bytes as u64 * 8 * u64::from(FPS)) / self.layers[layer].len().max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the ffmpeg CLI (scripts/test.sh installs it).
    #[test]
    fn made_by_ffmpeg_and_read_back() {
        let dir = std::env::temp_dir().join(format!("jiefen-fixture-{}", std::process::id()));
        ensure(&dir).expect("ffmpeg makes the fixtures");
        let fx = Fixture::load(&dir).expect("fixtures load");
        let _ = std::fs::remove_dir_all(&dir);
        for (i, layer) in fx.layers.iter().enumerate() {
            assert_eq!(layer.len() as u32, SECONDS * FPS, "layer {i}");
            assert_eq!(layer.iter().filter(|f| f.keyframe).count() as u32, SECONDS * FPS / GOP + 1, "layer {i}");
            assert_eq!(fx.next_keyframe(i, 1), GOP as usize);
            assert_eq!(fx.next_keyframe(i, layer.len() - 1), 0);
        }
        // Higher layers cost more.
        assert!(fx.bitrate(0) < fx.bitrate(1) && fx.bitrate(1) < fx.bitrate(2), "{} {} {}", fx.bitrate(0), fx.bitrate(1), fx.bitrate(2));
        let audio_frames = fx.audio.len() as u32;
        assert!((SECONDS * 50 - 2..=SECONDS * 50 + 2).contains(&audio_frames), "{audio_frames} Opus packets");
    }
}
