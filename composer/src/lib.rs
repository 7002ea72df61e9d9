//! Composite recordings: every track of a session, decoded with FFmpeg (ffmpeg-next over the
//! system libraries), laid out on a grid with each speaker's name under their tile, audio mixed,
//! encoded as one MP4 (H.264 + AAC) that plays anywhere. Runs in a worker, never on the media
//! plane: it is CPU-heavy by nature.

use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;
use ffmpeg::{Dictionary, Rational, codec, encoder, filter, format, frame, media};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("nothing to compose: no readable tracks")]
    Empty,
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("FFmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg::Error),
    #[error("{0}")]
    Setup(String),
}

/// One recorded track and where it starts on the session's clock.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub start_ms: i64,
    /// Shown under the tile (video) — the participant's name.
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub width: u32,
    pub height: u32,
    pub fps: i32,
    /// A font with CJK glyphs for the names; names are left out without one.
    pub font: Option<PathBuf>,
    /// libx264 constant rate factor (lower: better and larger).
    pub crf: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { width: 1280, height: 720, fps: 25, font: default_font(), crf: 27 }
    }
}

/// The first CJK-capable font found among those Debian packages install.
pub fn default_font() -> Option<PathBuf> {
    [
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub duration_ms: i64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub tiles: usize,
    pub audio_inputs: usize,
}

struct Source {
    ictx: format::context::Input,
    stream: usize,
    time_base: Rational,
    start_ms: i64,
    decoder: Decoder,
    label: String,
    pending: Option<ffmpeg::Packet>,
    done: bool,
}

enum Decoder {
    Video(ffmpeg::decoder::Video),
    Audio(ffmpeg::decoder::Audio),
}

impl Source {
    fn open(input: &Input) -> Result<Source, ComposeError> {
        let bad = |message: String| ComposeError::Input { path: input.path.clone(), message };
        let ictx = format::input(&input.path).map_err(|e| bad(e.to_string()))?;
        let (stream, time_base, params, kind) = {
            let s = ictx.streams().best(media::Type::Video).or_else(|| ictx.streams().best(media::Type::Audio)).ok_or_else(|| bad("no audio or video stream".into()))?;
            (s.index(), s.time_base(), s.parameters(), s.parameters().medium())
        };
        let ctx = codec::context::Context::from_parameters(params).map_err(|e| bad(e.to_string()))?;
        let decoder = match kind {
            media::Type::Video => Decoder::Video(ctx.decoder().video().map_err(|e| bad(e.to_string()))?),
            _ => Decoder::Audio(ctx.decoder().audio().map_err(|e| bad(e.to_string()))?),
        };
        Ok(Source { ictx, stream, time_base, start_ms: input.start_ms, decoder, label: String::new(), pending: None, done: false })
    }

    /// The next packet of this track (reading ahead one), or `None` at its end.
    fn peek(&mut self) -> Option<&ffmpeg::Packet> {
        while self.pending.is_none() && !self.done {
            let mut p = ffmpeg::Packet::empty();
            match p.read(&mut self.ictx) {
                Ok(()) if p.stream() == self.stream => self.pending = Some(p),
                Ok(()) => {}
                Err(_) => self.done = true,
            }
        }
        self.pending.as_ref()
    }

    /// When the next packet plays, on the session's clock.
    fn next_ms(&mut self) -> Option<i64> {
        let (tb, start) = (self.time_base, self.start_ms);
        let p = self.peek()?;
        let ts = p.dts().or(p.pts()).unwrap_or(0);
        Some(start + ts * 1000 * i64::from(tb.numerator()) / i64::from(tb.denominator().max(1)))
    }
}

/// A path as a filter option value: paths we make have no quotes, so single quotes suffice.
fn quote_path(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', ""))
}

/// Composes `inputs` into `out` (MP4). `progress` gets 0.0–1.0 as the encode goes.
pub fn compose(inputs: &[Input], duration_ms: i64, out: &Path, opts: &Options, mut progress: impl FnMut(f32)) -> Result<Report, ComposeError> {
    ffmpeg::init()?;
    ffmpeg::log::set_level(ffmpeg::log::Level::Error);
    let mut sources = Vec::new();
    for input in inputs {
        match Source::open(input) {
            Ok(s) => sources.push((s, input.name.clone())),
            Err(e) => tracing::warn!(error = %e, "a track cannot be read; composing without it"),
        }
    }
    if sources.is_empty() {
        return Err(ComposeError::Empty);
    }
    let duration_ms = duration_ms.max(1);

    let names_dir = out.with_extension("names");
    std::fs::create_dir_all(&names_dir).map_err(|e| ComposeError::Setup(format!("{}: {e}", names_dir.display())))?;
    let result = compose_with(&mut sources, duration_ms, out, opts, &names_dir, &mut progress);
    let _ = std::fs::remove_dir_all(&names_dir);
    result
}

#[allow(clippy::too_many_lines)]
fn compose_with(sources: &mut [(Source, String)], duration_ms: i64, out: &Path, opts: &Options, names_dir: &Path, progress: &mut impl FnMut(f32)) -> Result<Report, ComposeError> {
    let (w, h) = (opts.width & !1, opts.height & !1);
    let videos = sources.iter().filter(|(s, _)| matches!(s.decoder, Decoder::Video(_))).count();
    let cols = (videos as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (videos as u32).div_ceil(cols).max(1);
    let (tw, th) = ((w / cols) & !1, (h / rows) & !1);

    // The filter graph: a black canvas, each video scaled into its tile with its name, overlaid
    // from its start time on; the audio delayed to its start and mixed.
    let mut graph = filter::Graph::new();
    let mut spec = vec![format!("color=c=black:s={w}x{h}:r={}:d={:.3}[base0]", opts.fps, duration_ms as f64 / 1000.0)];
    let (mut vi, mut ai) = (0usize, 0usize);
    let mut mixed = Vec::new();
    for (s, name) in sources.iter_mut() {
        match &s.decoder {
            Decoder::Video(d) => {
                s.label = format!("v{vi}");
                let pix = d.format();
                let pix = if pix == format::Pixel::None { format::Pixel::YUV420P } else { pix };
                let args = format!(
                    "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect=1/1",
                    d.width().max(2),
                    d.height().max(2),
                    ffmpeg::ffi::AVPixelFormat::from(pix) as i32,
                    s.time_base.numerator(),
                    s.time_base.denominator()
                );
                graph.add(&filter::find("buffer").ok_or_else(|| ComposeError::Setup("no buffer filter".into()))?, &s.label, &args)?;
                // The name goes through a text file: no filtergraph escaping of whatever a name holds.
                let label = match &opts.font {
                    Some(font) => {
                        let file = names_dir.join(format!("{vi}.txt"));
                        std::fs::write(&file, name.as_bytes()).map_err(|e| ComposeError::Setup(format!("{}: {e}", file.display())))?;
                        format!(
                            ",drawtext=fontfile={}:textfile={}:expansion=none:x=12:y=h-th-12:fontsize={}:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=6",
                            quote_path(font),
                            quote_path(&file),
                            (th / 16).clamp(14, 40)
                        )
                    }
                    None => String::new(),
                };
                let (x, y) = ((vi as u32 % cols) * tw, (vi as u32 / cols) * th);
                spec.push(format!(
                    "[{l}]setpts=PTS-STARTPTS+{start}/1000/TB,scale={tw}:{th}:force_original_aspect_ratio=decrease,pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2:color=0x202020{label}[t{vi}]",
                    l = s.label,
                    start = s.start_ms.max(0)
                ));
                spec.push(format!("[base{vi}][t{vi}]overlay=x={x}:y={y}:eof_action=pass:repeatlast=0[base{}]", vi + 1));
                vi += 1;
            }
            Decoder::Audio(d) => {
                s.label = format!("a{ai}");
                let layout = if d.channel_layout().is_empty() { ffmpeg::ChannelLayout::default(i32::from(d.channels())) } else { d.channel_layout() };
                let args = format!("time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}", 1, d.rate(), d.rate(), d.format().name(), layout.bits());
                graph.add(&filter::find("abuffer").ok_or_else(|| ComposeError::Setup("no abuffer filter".into()))?, &s.label, &args)?;
                spec.push(format!("[{}]aresample=48000,adelay={}:all=1[d{ai}]", s.label, s.start_ms.max(0)));
                mixed.push(format!("[d{ai}]"));
                ai += 1;
            }
        }
    }
    spec.push(format!("[base{vi}]format=yuv420p[vfinal]"));
    let audio_out = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo";
    match mixed.len() {
        0 => spec.push(format!("anullsrc=r=48000:cl=stereo,atrim=duration={:.3},{audio_out}[afinal]", duration_ms as f64 / 1000.0)),
        1 => spec.push(format!("{}{audio_out}[afinal]", mixed[0])),
        n => spec.push(format!("{}amix=inputs={n}:duration=longest:normalize=0,{audio_out}[afinal]", mixed.join(""))),
    }
    graph.add(&filter::find("buffersink").ok_or_else(|| ComposeError::Setup("no buffersink".into()))?, "vout", "")?;
    graph.add(&filter::find("abuffersink").ok_or_else(|| ComposeError::Setup("no abuffersink".into()))?, "aout", "")?;
    let spec = spec.join(";").replace("[vfinal]", "").replace("[afinal]", "");
    // Each pad name declared here is a label the spec refers to.
    let mut parser = graph.input("vout", 0)?;
    parser = parser.input("aout", 0)?;
    for (s, _) in sources.iter() {
        parser = parser.output(&s.label, 0)?;
    }
    // The two final chains end unlabelled; the parser connects them to vout and aout in order.
    let spec = spec.replacen("format=yuv420p;", "format=yuv420p[vout];", 1);
    let spec = spec.trim_end_matches(';').to_string();
    let spec = if let Some(i) = spec.rfind(audio_out) { format!("{}{}[aout]", &spec[..i], audio_out) } else { spec };
    parser.parse(&spec).map_err(|e| ComposeError::Setup(format!("filter graph: {e}: {spec}")))?;
    graph.validate().map_err(|e| ComposeError::Setup(format!("filter graph: {e}")))?;

    // The output: H.264 (libx264) and AAC in MP4, the index at the front for progressive play.
    let mut octx = format::output(out).map_err(|e| ComposeError::Setup(format!("{}: {e}", out.display())))?;
    let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
    let h264 = encoder::find_by_name("libx264").or_else(|| encoder::find(codec::Id::H264)).ok_or_else(|| ComposeError::Setup("no H.264 encoder".into()))?;
    let aac = encoder::find(codec::Id::AAC).ok_or_else(|| ComposeError::Setup("no AAC encoder".into()))?;
    let video_tb = Rational::new(1, opts.fps);
    let mut venc = codec::context::Context::new_with_codec(h264).encoder().video()?;
    venc.set_width(w);
    venc.set_height(h);
    venc.set_format(format::Pixel::YUV420P);
    venc.set_time_base(video_tb);
    venc.set_frame_rate(Some(Rational::new(opts.fps, 1)));
    if global {
        venc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut x264 = Dictionary::new();
    x264.set("preset", "veryfast");
    x264.set("crf", &opts.crf.to_string());
    let mut venc = venc.open_with(x264)?;
    let mut aenc = codec::context::Context::new_with_codec(aac).encoder().audio()?;
    aenc.set_rate(48_000);
    aenc.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
    aenc.set_format(format::Sample::F32(format::sample::Type::Planar));
    aenc.set_bit_rate(96_000);
    aenc.set_time_base(Rational::new(1, 48_000));
    if global {
        aenc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut aenc = aenc.open_as(aac)?;
    if let Some(mut sink) = graph.get("aout") {
        sink.sink().set_frame_size(aenc.frame_size().max(1024));
    }
    let vstream = {
        let mut st = octx.add_stream(h264)?;
        st.set_parameters(&venc);
        st.index()
    };
    let astream = {
        let mut st = octx.add_stream(aac)?;
        st.set_parameters(&aenc);
        st.index()
    };
    let mut movflags = Dictionary::new();
    movflags.set("movflags", "+faststart");
    octx.write_header_with(movflags)?;
    let vout_tb = octx.stream(vstream).map(|s| s.time_base()).unwrap_or(video_tb);
    let aout_tb = octx.stream(astream).map(|s| s.time_base()).unwrap_or(Rational::new(1, 48_000));

    let mut report = Report { duration_ms, video_frames: 0, audio_frames: 0, tiles: vi, audio_inputs: ai };
    let mut last_progress = -1.0f32;
    let mut pump = |graph: &mut filter::Graph, octx: &mut format::context::Output, venc: &mut encoder::Video, aenc: &mut encoder::Audio, report: &mut Report| -> Result<(), ComposeError> {
        let mut vf = frame::Video::empty();
        while let Some(mut sink) = graph.get("vout") {
            if sink.sink().frame(&mut vf).is_err() {
                break;
            }
            venc.send_frame(&vf)?;
            report.video_frames += 1;
            drain(venc, octx, vstream, video_tb, vout_tb)?;
            let done = vf.pts().unwrap_or(0) as f32 * 1000.0 / opts.fps as f32 / duration_ms as f32;
            if done - last_progress >= 0.05 {
                last_progress = done;
                progress(done.min(1.0));
            }
        }
        let mut af = frame::Audio::empty();
        while let Some(mut sink) = graph.get("aout") {
            if sink.sink().frame(&mut af).is_err() {
                break;
            }
            aenc.send_frame(&af)?;
            report.audio_frames += 1;
            drain(aenc, octx, astream, Rational::new(1, 48_000), aout_tb)?;
        }
        Ok(())
    };

    // Feed the tracks in time order so that the graph never holds much of any one of them.
    loop {
        let mut next: Option<(usize, i64)> = None;
        for (i, (s, _)) in sources.iter_mut().enumerate() {
            if let Some(t) = s.next_ms()
                && next.is_none_or(|(_, best)| t < best)
            {
                next = Some((i, t));
            }
        }
        let Some((i, _)) = next else { break };
        let (s, _) = &mut sources[i];
        let Some(packet) = s.pending.take() else { continue };
        let label = s.label.clone();
        decode_into(&mut s.decoder, Some(&packet), &mut graph, &label)?;
        if s.peek().is_none() {
            decode_into(&mut s.decoder, None, &mut graph, &label)?;
            if let Some(mut src) = graph.get(&label) {
                src.source().flush()?;
            }
        }
        pump(&mut graph, &mut octx, &mut venc, &mut aenc, &mut report)?;
    }
    pump(&mut graph, &mut octx, &mut venc, &mut aenc, &mut report)?;
    venc.send_eof()?;
    drain(&mut venc, &mut octx, vstream, video_tb, vout_tb)?;
    aenc.send_eof()?;
    drain(&mut aenc, &mut octx, astream, Rational::new(1, 48_000), aout_tb)?;
    octx.write_trailer()?;
    progress(1.0);
    Ok(report)
}

/// Sends a packet (or the end) to a decoder and every frame it gives to the graph's source.
fn decode_into(decoder: &mut Decoder, packet: Option<&ffmpeg::Packet>, graph: &mut filter::Graph, label: &str) -> Result<(), ComposeError> {
    let Some(mut src) = graph.get(label) else { return Ok(()) };
    match decoder {
        Decoder::Video(d) => {
            // A damaged packet is skipped, not fatal: the rest of the track still composes.
            let _ = match packet {
                Some(p) => d.send_packet(p),
                None => d.send_eof(),
            };
            let mut f = frame::Video::empty();
            while d.receive_frame(&mut f).is_ok() {
                let ts = f.timestamp();
                f.set_pts(ts);
                src.source().add(&f)?;
            }
        }
        Decoder::Audio(d) => {
            let _ = match packet {
                Some(p) => d.send_packet(p),
                None => d.send_eof(),
            };
            let mut f = frame::Audio::empty();
            while d.receive_frame(&mut f).is_ok() {
                let ts = f.timestamp();
                f.set_pts(ts);
                src.source().add(&f)?;
            }
        }
    }
    Ok(())
}

fn drain(enc: &mut encoder::Encoder, octx: &mut format::context::Output, stream: usize, from: Rational, to: Rational) -> Result<(), ComposeError> {
    let mut packet = ffmpeg::Packet::empty();
    while enc.receive_packet(&mut packet).is_ok() {
        packet.set_stream(stream);
        packet.rescale_ts(from, to);
        packet.write_interleaved(octx)?;
    }
    Ok(())
}
