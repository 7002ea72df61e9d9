//! Mediation agreements as pure types and functions: the fields article 29 of the People's
//! Mediation Law requires, their validation and rendering into the document's text, and the
//! organisation's seal (an Ed25519 signature over what was signed).

pub mod document;
pub mod font;
pub mod pdf;
pub mod seal;
