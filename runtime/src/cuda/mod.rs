//! cuda (see DESIGN.md).
