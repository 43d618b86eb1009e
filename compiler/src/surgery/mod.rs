//! surgery (see DESIGN.md).
