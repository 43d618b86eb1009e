//! Codegen's settings: environment variables read when a spec is compiled (trials of kernel
//! forms that are off by default). One reader, so that every setting is off where it is unset,
//! empty or `0`, and any value it does not know is an error naming the variable.

use super::CodegenError;

/// The setting `name`: `None` where it is unset, empty or `0`, else what `parse` makes of its
/// (trimmed) value; a value `parse` refuses is [`CodegenError::Setting`] with `expected`.
pub fn read_setting<T>(
    name: &str,
    expected: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, CodegenError> {
    let value = std::env::var(name).unwrap_or_default();
    match value.trim() {
        "" | "0" => Ok(None),
        v => parse(v).map(Some).ok_or_else(|| CodegenError::Setting {
            name: name.into(),
            value: value.clone(),
            expected: expected.into(),
        }),
    }
}
