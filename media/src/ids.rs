//! Short identifier newtypes and the descriptions of tracks and permissions.

use std::fmt;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

id_type!(RoomId);
id_type!(ParticipantId);
id_type!(TrackId);

impl TrackId {
    /// A track is named by its publisher, the publisher's seat (so that a rejoin never reuses
    /// an id a subscriber may still hold) and the mid of the publisher's m-line.
    pub fn new(publisher: &ParticipantId, seat: u64, mid: &str) -> TrackId {
        TrackId(format!("{publisher}/{seat}/{mid}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Microphone,
    Camera,
    Screen,
}

impl Source {
    pub fn kind(self) -> Kind {
        match self {
            Source::Microphone => Kind::Audio,
            Source::Camera | Source::Screen => Kind::Video,
        }
    }
}

/// What a participant may do with media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<Source>,
    pub subscribe: bool,
    /// A hidden observer: subscribes, is never announced to others.
    pub hidden: bool,
    /// May send on the room data channel (a hidden observer never may: it would show itself).
    pub data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub id: TrackId,
    pub publisher: ParticipantId,
    pub kind: Kind,
    pub source: Source,
}
