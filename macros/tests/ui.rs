//! Compile errors of the macros (`trybuild`): a missing spec file, an invalid spec and an
//! invalid surgery (the spec's own `line:column` message, at the macro call), and misuse of the
//! generated types (a layer kind the spec lacks, a converter given another spec's types).
//! Expected messages live in `tests/ui/*.stderr` (`TRYBUILD=overwrite` rewrites them).

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
