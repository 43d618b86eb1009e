//! TMA tensor maps (`CUtensorMap`): the descriptors Hopper's tensor memory accelerator reads to
//! copy a tile of a strided global tensor into shared memory. They are encoded on the host
//! (`cuTensorMapEncodeTiled`) and passed to a kernel by value, as a `__grid_constant__`
//! parameter of 128 bytes.

use super::error::CudaError;
use cudarc::driver::sys;
use cudarc::driver::DeviceRepr;

/// An encoded tensor map, or all zeros where none could be encoded (a kernel must then not use
/// it: the Hopper prefill checks the same alignment before it issues a TMA copy).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct TensorMap(pub(crate) sys::CUtensorMap);

// SAFETY: a plain 128-byte, 128-byte-aligned C struct, passed to kernels by value.
unsafe impl DeviceRepr for TensorMap {}

impl std::fmt::Debug for TensorMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_null() {
            f.write_str("TensorMap(none)")
        } else {
            write!(f, "TensorMap({:#x}…)", self.0.opaque[0])
        }
    }
}

impl TensorMap {
    /// The all-zero map: a placeholder for a kernel that will not issue TMA copies.
    pub fn null() -> TensorMap {
        TensorMap(sys::CUtensorMap { opaque: [0; 16] })
    }

    pub fn is_null(&self) -> bool {
        self.0.opaque.iter().all(|&w| w == 0)
    }
}

/// A 2-D bf16 tensor of `rows` rows of `cols` elements, `row_stride` elements apart, at device
/// address `base`, read in boxes of `box_rows` × `box_cols` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileMap2d {
    pub base: u64,
    pub cols: u64,
    pub rows: u64,
    pub row_stride: u64,
    pub box_cols: u32,
    pub box_rows: u32,
    /// How much L2 fetches around each request: 0 (none), 64, 128 or 256 bytes.
    pub l2_promotion: u32,
}

impl TileMap2d {
    /// Whether TMA can address this tensor: a 16-byte-aligned base and row stride, a box of at
    /// most 256 rows whose rows are 128 bytes (the 128-byte swizzle's span).
    pub fn supported(&self) -> bool {
        self.base.is_multiple_of(16)
            && (self.row_stride * 2).is_multiple_of(16)
            && self.row_stride * 2 < (1 << 40)
            && self.box_cols * 2 == 128
            && (1..=256).contains(&self.box_rows)
            && self.cols >= u64::from(self.box_cols)
            && self.rows >= 1
            && [0, 64, 128, 256].contains(&self.l2_promotion)
    }

    /// Encodes the map with the 128-byte swizzle (16-byte chunk c of box row r lands at chunk
    /// c ^ (r % 8) of a 1024-byte-aligned destination: the layout `wgmma` descriptors read);
    /// out-of-range elements read as zero. The null map where [`Self::supported`] fails.
    pub fn encode(&self) -> Result<TensorMap, CudaError> {
        if !self.supported() {
            return Ok(TensorMap::null());
        }
        let mut map = TensorMap::null();
        let dims = [self.cols, self.rows];
        let strides = [self.row_stride * 2]; // bytes, for every dimension but the first
        let boxes = [self.box_cols, self.box_rows];
        let element_strides = [1u32, 1];
        use sys::CUtensorMapL2promotion as P;
        let promotion = match self.l2_promotion {
            64 => P::CU_TENSOR_MAP_L2_PROMOTION_L2_64B,
            128 => P::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
            256 => P::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            _ => P::CU_TENSOR_MAP_L2_PROMOTION_NONE,
        };
        // SAFETY: every pointer addresses a live local array of the rank (2) the call reads;
        // the driver only writes the 128-byte map.
        unsafe {
            sys::cuTensorMapEncodeTiled(
                &mut map.0,
                sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                2,
                self.base as *mut std::ffi::c_void,
                dims.as_ptr(),
                strides.as_ptr(),
                boxes.as_ptr(),
                element_strides.as_ptr(),
                sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
                sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
                promotion,
                sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
            )
        }
        .result()
        .map_err(|e| CudaError::driver(format!("encoding a TMA tensor map for {self:?}"), e))?;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_map() -> TileMap2d {
        TileMap2d {
            base: 0x7f00_0000_0100,
            cols: 1024,
            rows: 8192,
            row_stride: 1024,
            box_cols: 64,
            box_rows: 128,
            l2_promotion: 256,
        }
    }

    /// What TMA cannot address encodes as the null map (no driver call), which kernels read as
    /// "copy these tiles yourself".
    #[test]
    fn unaddressable_tensors_get_the_null_map() {
        assert!(kv_map().supported());
        for bad in [
            TileMap2d {
                base: 0x7f00_0000_0102,
                ..kv_map()
            },
            TileMap2d {
                row_stride: 1025,
                ..kv_map()
            },
            TileMap2d {
                box_cols: 128,
                ..kv_map()
            },
            TileMap2d {
                box_rows: 257,
                ..kv_map()
            },
            TileMap2d { cols: 32, ..kv_map() },
            TileMap2d { rows: 0, ..kv_map() },
            TileMap2d {
                l2_promotion: 32,
                ..kv_map()
            },
        ] {
            assert!(!bad.supported(), "{bad:?}");
            let map = bad.encode().expect("no driver call for an unsupported map");
            assert!(map.is_null());
        }
        assert!(TensorMap::null().is_null());
        assert_eq!(format!("{:?}", TensorMap::null()), "TensorMap(none)");
    }
}
