//! cpu (see DESIGN.md).
