//! modelc proc-macros: typed weight layouts and converters (grown in later issues).
