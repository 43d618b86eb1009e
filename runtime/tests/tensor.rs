//! HostTensor / TensorView construction and conversions.

use half::{bf16, f16};
use modelc_runtime::tensor::{DType, HostTensor, TensorError, TensorView};

/// Values exactly representable in bf16 (8 significant bits, bf16 exponent range) and f16
/// (subset: 11 bits, |x| < 65504, not below 2^-24): conversions must be bit-exact on them.
fn representable() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        -2.75,
        3.0 / 128.0,
        255.0,
        -192.0,
        2f32.powi(-14), // smallest normal f16
        2f32.powi(-24), // smallest subnormal f16
        1.0 + 2f32.powi(-7),
        f32::INFINITY,
        f32::NEG_INFINITY,
    ]
}

#[test]
fn bf16_f16_f32_round_trips_are_exact_on_representable_values() {
    let values = representable();
    let t = HostTensor::from_f32(vec![values.len()], &values).unwrap();
    for dtype in [DType::BF16, DType::F16, DType::F32, DType::F64] {
        let narrowed = t.cast(dtype);
        assert_eq!(narrowed.dtype, dtype);
        assert_eq!(narrowed.nbytes(), values.len() * dtype.size());
        let back = narrowed.to_f32_vec();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values), "{dtype}");
        // f64 view agrees exactly too.
        let wide: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
        assert_eq!(narrowed.to_f64_vec(), wide, "{dtype}");
        // Casting back to f32 reproduces the original bytes.
        assert_eq!(narrowed.cast(DType::F32).data, t.data, "{dtype}");
    }
}

#[test]
fn constructors_store_little_endian_and_views_borrow() {
    let b = [bf16::from_f32(1.5), bf16::from_f32(-2.0)];
    let t = HostTensor::from_bf16(vec![2], &b).unwrap();
    assert_eq!(t.data, [0xC0, 0x3F, 0x00, 0xC0]);
    let h = [f16::from_f32(1.0)];
    assert_eq!(HostTensor::from_f16(vec![1], &h).unwrap().data, [0x00, 0x3C]);
    let shape = [2usize];
    let v = TensorView::new(DType::BF16, &shape, &t.data).unwrap();
    assert_eq!(v.to_f32_vec(), vec![1.5, -2.0]);
    assert_eq!(v.numel(), 2);
    assert_eq!(v.nbytes(), 4);
    assert_eq!(v.to_host(), t);
    assert_eq!(t.view(), v);
    // A scalar has one element.
    let s = HostTensor::from_f64(vec![], &[7.0]).unwrap();
    assert_eq!((s.numel(), s.nbytes()), (1, 8));
}

#[test]
fn narrowing_rounds_to_nearest_even() {
    // bf16 keeps 8 significant bits: near 1 the spacing is 2^-7.
    let ulp = 2f64.powi(-7);
    let cases_f64 = [
        (1.0 + ulp / 2.0, 1.0),                        // tie -> even (1.0)
        (1.0 + 3.0 * ulp / 2.0, 1.0 + 2.0 * ulp),      // tie -> even (up)
        (1.0 + ulp / 2.0 + 2f64.powi(-40), 1.0 + ulp), // just above a tie, below f32 precision
        (1.0 + ulp / 2.0 - 2f64.powi(-40), 1.0),       // just below a tie
        (-(1.0 + 3.0 * ulp / 2.0), -(1.0 + 2.0 * ulp)),
    ];
    let inputs: Vec<f64> = cases_f64.iter().map(|c| c.0).collect();
    let t = HostTensor::from_f64(vec![inputs.len()], &inputs).unwrap();
    let expected: Vec<f64> = cases_f64.iter().map(|c| c.1).collect();
    assert_eq!(t.cast(DType::BF16).to_f64_vec(), expected);
    // The same through f32 (the ±2^-40 cases collapse onto the tie in f32, so skip them).
    let f32_inputs: Vec<f32> = [0usize, 1, 4].iter().map(|&i| inputs[i] as f32).collect();
    let t32 = HostTensor::from_f32(vec![3], &f32_inputs).unwrap();
    let exp32: Vec<f64> = [0usize, 1, 4].iter().map(|&i| expected[i]).collect();
    assert_eq!(t32.cast(DType::BF16).to_f64_vec(), exp32);

    // f16 keeps 11 significant bits: spacing 2^-10 near 1.
    let ulp = 2f64.powi(-10);
    let inputs = [
        1.0 + ulp / 2.0,
        1.0 + 3.0 * ulp / 2.0,
        1.0 + ulp / 2.0 + 2f64.powi(-45),
        70000.0,
    ];
    let t = HostTensor::from_f64(vec![4], &inputs).unwrap();
    let got = t.cast(DType::F16).to_f64_vec();
    assert_eq!(&got[..3], &[1.0, 1.0 + 2.0 * ulp, 1.0 + ulp]);
    assert!(got[3].is_infinite(), "70000 overflows f16 to inf");
    // f64 -> f32 is Rust's own RNE conversion.
    let x = 1.0 + 2f64.powi(-30);
    assert_eq!(
        HostTensor::from_f64(vec![1], &[x]).unwrap().to_f32_vec(),
        vec![x as f32]
    );
}

#[test]
fn integers_convert_exactly_and_casts_saturate() {
    let big = [(1i64 << 53), -(1i64 << 53), 123_456_789, -1];
    let t = HostTensor::from_i64(vec![4], &big).unwrap();
    let expect: Vec<f64> = big.iter().map(|&x| x as f64).collect();
    assert_eq!(t.to_f64_vec(), expect);
    assert_eq!(t.to_f64_vec()[0], 9_007_199_254_740_992.0);
    let i = HostTensor::from_i32(vec![2], &[i32::MIN, i32::MAX]).unwrap();
    assert_eq!(i.to_f64_vec(), vec![-2147483648.0, 2147483647.0]);
    assert_eq!(
        HostTensor::from_u8(vec![2], &[0, 255]).unwrap().to_f32_vec(),
        vec![0.0, 255.0]
    );

    // i64 -> i32 and -> u8 saturate.
    let wide = HostTensor::from_i64(vec![3], &[i64::MAX, i64::MIN, 7]).unwrap();
    assert_eq!(
        wide.cast(DType::I32),
        HostTensor::from_i32(vec![3], &[i32::MAX, i32::MIN, 7]).unwrap()
    );
    assert_eq!(wide.cast(DType::U8).data, vec![255, 0, 7]);
    // Float -> int: toward zero, saturating, NaN -> 0.
    let f = HostTensor::from_f32(vec![4], &[2.9, -2.9, f32::NAN, 1e10]).unwrap();
    assert_eq!(
        f.cast(DType::I32),
        HostTensor::from_i32(vec![4], &[2, -2, 0, i32::MAX]).unwrap()
    );
    // Int -> f32 round trip through the cast path is exact for small values.
    assert_eq!(i.cast(DType::F64).cast(DType::I32), i);
}

#[test]
fn inconsistent_parts_are_errors_not_panics() {
    let err = HostTensor::from_f32(vec![2, 3], &[1.0; 5]).unwrap_err();
    assert_eq!(
        err,
        TensorError::ElementCount {
            shape: vec![2, 3],
            expected: 6,
            found: 5
        }
    );
    assert!(err.to_string().contains("[2, 3]"), "{err}");
    let err = HostTensor::new(DType::BF16, vec![3], vec![0; 5]).unwrap_err();
    assert!(
        matches!(
            err,
            TensorError::ByteLength {
                expected: 6,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
    let err = HostTensor::zeros(DType::F64, vec![usize::MAX, 2]).unwrap_err();
    assert!(matches!(err, TensorError::Overflow { .. }), "{err}");
    let shape = [4usize];
    assert!(TensorView::new(DType::F32, &shape, &[0; 15]).is_err());
    // A hand-built inconsistent tensor decodes only whole elements instead of panicking.
    let bad = HostTensor {
        dtype: DType::F32,
        shape: vec![2],
        data: vec![0; 6],
    };
    assert!(bad.check().is_err());
    assert_eq!(bad.to_f32_vec().len(), 1);
    assert_eq!(bad.cast(DType::F32).data.len(), 4);
}

#[test]
fn non_finite_elements_are_counted_in_every_float_dtype() {
    let values = [1.0, f64::NAN, -0.0, f64::INFINITY, f64::MAX, f64::NEG_INFINITY, 1e-30];
    for dtype in [DType::F64, DType::F32, DType::F16, DType::BF16] {
        let t = HostTensor::from_f64(vec![values.len()], &values).unwrap().cast(dtype);
        // f64::MAX overflows to Inf in the narrower formats; 1e-30 flushes to 0 in f16 (finite).
        let want = if dtype == DType::F64 { 3 } else { 4 };
        assert_eq!(dtype.count_non_finite(&t.data), want, "{dtype}");
    }
    let ints = HostTensor::from_i32(vec![3], &[-1, i32::MAX, 0x7f80_0000]).unwrap();
    assert_eq!(DType::I32.count_non_finite(&ints.data), 0);
}
