//! Machine code of emitted kernels: a module compiled to a CUBIN by NVRTC and disassembled by
//! `cuobjdump -sass` (build-machine tools: no GPU needed), and a check on it that the CUDA source
//! and the PTX cannot show.
//!
//! [`undefined_descriptors`]: on sm_90, ptxas can drop the `createpolicy` that an
//! `L2::cache_hint` copy reads and keep the copy; the `LDGSTS` then names a descriptor register
//! nothing writes, and the kernel traps with an illegal instruction when it runs. This is the
//! cause of the `CUDA_ERROR_ILLEGAL_INSTRUCTION` the Hopper prefill's `cp.async` cache-hint trials
//! raised (docs/PERFORMANCE.md); the same bug was reported against CUDA 13.1
//! (IST-DASLab/marlin#44) and 13.3 (triton-lang/triton#11660), and is fixed in ptxas 13.4.59
//! (triton-lang/triton#11848). Templates that emit cache-hinted copies are checked with it
//! (`tests/nvrtc_compile.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use modelc_runtime::cuda::nvrtc::{compile_cubin, default_include_dirs};
use modelc_runtime::cuda::CudaError;

/// Errors of disassembling a module.
#[derive(Debug, thiserror::Error)]
pub enum SassError {
    #[error("MODELC_CUOBJDUMP={0}: no such file")]
    NoSuchTool(PathBuf),
    #[error(
        "--sass needs cuobjdump (and nvdisasm): neither MODELC_CUOBJDUMP nor PATH has it; the PyPI wheels \
         nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm hold both (in nvidia/cu13/bin)"
    )]
    NoTool,
    #[error("compiling {name} for {arch}")]
    Compile {
        name: String,
        arch: String,
        #[source]
        source: Box<CudaError>,
    },
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} -sass failed on {name}: {stderr}", tool.display())]
    Tool {
        tool: PathBuf,
        name: String,
        stderr: String,
    },
}

/// `MODELC_CUOBJDUMP`, else the first `cuobjdump` on PATH.
pub fn find_cuobjdump() -> Result<PathBuf, SassError> {
    if let Some(p) = std::env::var_os("MODELC_CUOBJDUMP") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(SassError::NoSuchTool(p));
        }
        return Ok(p);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("cuobjdump"))
                .find(|p| p.is_file())
        })
        .ok_or(SassError::NoTool)
}

/// The SASS of module `source` (entry names in `name`'s namespace) compiled by NVRTC for the
/// real architecture `arch` (`sm_90`, `sm_90a`, ...), as `cuobjdump -sass` prints it.
pub fn disassemble(cuobjdump: &Path, source: &str, name: &str, arch: &str) -> Result<String, SassError> {
    let cubin = compile_cubin(source, name, arch, &default_include_dirs()).map_err(|source| SassError::Compile {
        name: name.to_string(),
        arch: arch.to_string(),
        source: Box::new(source),
    })?;
    // A folder of this call's own: calls may run at once (test threads).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("modelc-sass-{}-{call}", std::process::id()));
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| SassError::Io { what, path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let file = dir.join(format!("{name}.cubin"));
    let out = std::fs::write(&file, cubin.bytes())
        .map_err(io("writing", &file))
        .and_then(|()| {
            // cuobjdump runs nvdisasm: look beside cuobjdump first (the wheels put both in one folder).
            let mut path: Vec<PathBuf> = cuobjdump.parent().map(Path::to_path_buf).into_iter().collect();
            path.extend(std::env::var_os("PATH").iter().flat_map(std::env::split_paths));
            let path = std::env::join_paths(path).unwrap_or_default();
            Command::new(cuobjdump)
                .arg("-sass")
                .arg(&file)
                .env("PATH", path)
                .output()
                .map_err(io("running", cuobjdump))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        return Err(SassError::Tool {
            tool: cuobjdump.to_path_buf(),
            name: name.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A memory instruction whose descriptor register (`desc[URn]`) no instruction of its function
/// writes.
#[derive(Debug, Clone, PartialEq)]
pub struct UndefinedDescriptor {
    /// The function (kernel entry) it is in.
    pub function: String,
    /// `n` of `URn`.
    pub register: u32,
    /// The instruction, as disassembled.
    pub instruction: String,
}

impl std::fmt::Display for UndefinedDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` reads memory descriptor UR{}, which no instruction writes (ptxas dropped a \
             createpolicy; the kernel would trap with an illegal instruction)",
            self.function, self.instruction, self.register
        )
    }
}

/// Every memory instruction of `sass` (`cuobjdump -sass` output) whose `desc[URn]` register is
/// written by no instruction of the same function (module doc). Writers are the uniform-datapath
/// instructions (`U…`, `S2UR`, `R2UR`, `LDCU`) whose first operand is `URn`; a 64-bit one
/// (`.64`) writes `URn+1` too. The check is by function, not by path: it finds a descriptor
/// never materialised, as the ptxas bug leaves it, not one used before its write.
pub fn undefined_descriptors(sass: &str) -> Vec<UndefinedDescriptor> {
    let mut found = Vec::new();
    for function in sass.split("Function : ").skip(1) {
        let name = function.lines().next().unwrap_or("").trim().to_string();
        let mut written = std::collections::HashSet::new();
        let mut uses: Vec<(u32, String)> = Vec::new();
        for line in function.lines() {
            let Some(ins) = instruction(line) else { continue };
            let mut words = ins.split_whitespace();
            let mut op = words.next().unwrap_or("");
            if op.starts_with('@') {
                op = words.next().unwrap_or("");
            }
            let operands: String = words.collect::<Vec<_>>().join(" ");
            let uniform_writer = ["U", "S2UR", "R2UR", "LDCU"].iter().any(|p| op.starts_with(p));
            if uniform_writer {
                if let Some(n) = operands.strip_prefix("UR").and_then(leading_number) {
                    written.insert(n);
                    if op.contains(".64") {
                        written.insert(n + 1);
                    }
                }
            }
            let mut rest = operands.as_str();
            while let Some(i) = rest.find("desc[UR") {
                rest = &rest[i + "desc[UR".len()..];
                if let Some(n) = leading_number(rest) {
                    uses.push((n, ins.to_string()));
                }
            }
        }
        for (n, ins) in uses {
            if !written.contains(&n) {
                found.push(UndefinedDescriptor {
                    function: name.clone(),
                    register: n,
                    instruction: ins,
                });
            }
        }
    }
    found
}

/// The instruction of a SASS listing line (`/*0a30*/  LDGSTS ... ;  /* encoding */`).
fn instruction(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let rest = line.strip_prefix("/*")?;
    let (addr, rest) = rest.split_once("*/")?;
    if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let ins = rest.split(';').next()?.trim();
    (!ins.is_empty()).then_some(ins)
}

/// The decimal number `s` starts with.
fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "
\t\tFunction : good_kernel
        /*0000*/                   LDC R1, c[0x0][0x28] ;                      /* 0x00000a00ff017b82 */
        /*0010*/                   ULDC.64 UR6, c[0x0][0x208] ;               /* 0x0000820000067ab9 */
        /*0020*/                   LDGSTS.E.BYPASS.128 [R25], desc[UR6][R14.64], !P1 ; /* 0x0 */
        /*0030*/               @P0 LDG.E R2, desc[UR7][R4.64] ;               /* 0x0 */
        /*0040*/                   EXIT ;                                     /* 0x0 */
\t\tFunction : bad_kernel
        /*0000*/                   R2UR UR18, R3 ;                            /* 0x0 */
        /*0010*/                   LDGSTS.E.BYPASS.LTC128B.128 [R7], desc[UR1][R8.64] ; /* 0x0 */
        /*0020*/                   STG.E desc[UR18][R2.64], R0 ;              /* 0x0 */
";

    /// A descriptor materialised by a 64-bit `ULDC` (both halves), or by `R2UR`, is defined; one
    /// no instruction writes is reported with its function and instruction.
    #[test]
    fn finds_a_descriptor_nothing_writes() {
        let found = undefined_descriptors(LISTING);
        assert_eq!(
            found,
            vec![UndefinedDescriptor {
                function: "bad_kernel".into(),
                register: 1,
                instruction: "LDGSTS.E.BYPASS.LTC128B.128 [R7], desc[UR1][R8.64]".into(),
            }]
        );
        assert!(found[0].to_string().contains("bad_kernel: `LDGSTS"));
    }

    #[test]
    fn a_listing_without_functions_has_nothing_to_report() {
        assert!(undefined_descriptors("").is_empty());
        assert!(undefined_descriptors("Fatbin elf code:\n================\n").is_empty());
    }
}
