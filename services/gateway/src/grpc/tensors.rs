//! Tensors of the gRPC binding: inputs from `raw_input_contents` (the bytes
//! the binary tensor extension uses) or from the typed `contents` fields,
//! outputs to `raw_output_contents`, as Triton answers.

use mlops_onnx::model::{DataType, NamedTensor, TensorData};
use mlops_proto::inference::model_infer_request::InferInputTensor;
use mlops_proto::inference::model_infer_response::InferOutputTensor;
use mlops_proto::inference::{InferTensorContents, ModelInferRequest};
use prost::bytes::Bytes;

use crate::oip::codec;

/// The request's inputs; errors name the input and what is wrong with it.
pub fn decode_inputs(request: ModelInferRequest) -> Result<Vec<NamedTensor>, String> {
    if request.inputs.is_empty() {
        return Err("inputs: at least one input is required".into());
    }
    let raw = request.raw_input_contents;
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(format!(
            "raw_input_contents has {} entries for {} inputs; give one per input or none",
            raw.len(),
            request.inputs.len()
        ));
    }
    let mut raw = raw.into_iter();
    request
        .inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| decode_input(i, input, raw.next()))
        .collect()
}

fn decode_input(
    i: usize,
    input: InferInputTensor,
    raw: Option<Bytes>,
) -> Result<NamedTensor, String> {
    let field = format!("inputs[{i}] ({:?})", input.name);
    let datatype = codec::parse_datatype(&field, &input.datatype)?;
    let (shape, elements) = codec::parse_shape(&field, &input.shape)?;
    let data = match (raw, input.contents) {
        (Some(_), Some(contents)) if has_values(&contents) => {
            return Err(format!(
                "{field}: has both contents and raw_input_contents; give one"
            ));
        }
        (Some(bytes), _) => {
            codec::decode_binary(datatype, &bytes).map_err(|e| format!("{field}: {e}"))?
        }
        (None, Some(contents)) => {
            from_contents(datatype, contents).map_err(|e| format!("{field}.contents: {e}"))?
        }
        (None, None) => {
            return Err(format!(
                "{field}: neither contents nor raw_input_contents is given"
            ));
        }
    };
    codec::check_length(&field, &shape, elements, &data)?;
    Ok(NamedTensor {
        name: input.name,
        shape,
        data,
    })
}

fn has_values(c: &InferTensorContents) -> bool {
    !(c.bool_contents.is_empty()
        && c.int_contents.is_empty()
        && c.int64_contents.is_empty()
        && c.uint_contents.is_empty()
        && c.uint64_contents.is_empty()
        && c.fp32_contents.is_empty()
        && c.fp64_contents.is_empty()
        && c.bytes_contents.is_empty())
}

/// The typed field of `datatype`; narrower integers are range-checked.
fn from_contents(datatype: DataType, c: InferTensorContents) -> Result<TensorData, String> {
    fn narrow<S: Copy + std::fmt::Display, T: TryFrom<S>>(
        values: Vec<S>,
        what: &str,
    ) -> Result<Vec<T>, String> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| T::try_from(v).map_err(|_| format!("element {i} is {v}, not {what}")))
            .collect()
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::Uint8 => TensorData::Uint8(narrow(c.uint_contents, "a UINT8")?),
        DataType::Int8 => TensorData::Int8(narrow(c.int_contents, "an INT8")?),
        DataType::Int16 => TensorData::Int16(narrow(c.int_contents, "an INT16")?),
        DataType::Int32 => TensorData::Int32(c.int_contents),
        DataType::Int64 => TensorData::Int64(c.int64_contents),
        DataType::Fp32 => TensorData::Fp32(c.fp32_contents),
        DataType::Fp64 => TensorData::Fp64(c.fp64_contents),
        DataType::Bytes => TensorData::Bytes(c.bytes_contents.into_iter().map(Vec::from).collect()),
    })
}

/// Outputs described in `outputs`, their bytes in `raw_output_contents`.
pub fn encode_outputs(outputs: &[NamedTensor]) -> (Vec<InferOutputTensor>, Vec<Bytes>) {
    outputs
        .iter()
        .map(|output| {
            let mut raw = Vec::new();
            codec::encode_binary(&output.data, &mut raw);
            let described = InferOutputTensor {
                name: output.name.clone(),
                datatype: output.data.datatype().name().to_string(),
                shape: output.shape.iter().map(|&d| d as i64).collect(),
                ..Default::default()
            };
            (described, Bytes::from(raw))
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, datatype: &str, shape: &[i64]) -> InferInputTensor {
        InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_typed_contents_give_the_same_tensors() {
        let raw = ModelInferRequest {
            inputs: vec![input("x", "FP32", &[1, 2]), input("s", "BYTES", &[1])],
            raw_input_contents: vec![
                Bytes::from([1.5f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat()),
                Bytes::from([3u32.to_le_bytes().as_slice(), b"abc"].concat()),
            ],
            ..Default::default()
        };
        let mut typed = raw.clone();
        typed.raw_input_contents.clear();
        typed.inputs[0].contents = Some(InferTensorContents {
            fp32_contents: vec![1.5, 2.0],
            ..Default::default()
        });
        typed.inputs[1].contents = Some(InferTensorContents {
            bytes_contents: vec![Bytes::from_static(b"abc")],
            ..Default::default()
        });
        let a = decode_inputs(raw).expect("raw");
        let b = decode_inputs(typed).expect("typed");
        assert_eq!(a, b);
        assert_eq!(a[0].shape, vec![1, 2]);
        assert_eq!(a[1].data, TensorData::Bytes(vec![b"abc".to_vec()]));
    }

    #[test]
    fn errors_name_the_input() {
        let short = ModelInferRequest {
            inputs: vec![input("x", "FP32", &[3])],
            raw_input_contents: vec![Bytes::from(1f32.to_le_bytes().to_vec())],
            ..Default::default()
        };
        let e = decode_inputs(short).expect_err("short");
        assert!(
            e.contains("inputs[0] (\"x\"): shape [3] holds 3 values but 1"),
            "{e}"
        );

        let negative = ModelInferRequest {
            inputs: vec![input("x", "FP32", &[-1])],
            raw_input_contents: vec![Bytes::new()],
            ..Default::default()
        };
        let e = decode_inputs(negative).expect_err("negative");
        assert!(e.contains("-1 is not a dimension size"), "{e}");

        let mut wide = input("x", "INT8", &[1]);
        wide.contents = Some(InferTensorContents {
            int_contents: vec![300],
            ..Default::default()
        });
        let e = decode_inputs(ModelInferRequest {
            inputs: vec![wide],
            ..Default::default()
        })
        .expect_err("out of range");
        assert!(e.contains("element 0 is 300, not an INT8"), "{e}");

        let missing = ModelInferRequest {
            inputs: vec![input("x", "FP32", &[1]), input("y", "FP32", &[1])],
            raw_input_contents: vec![Bytes::new()],
            ..Default::default()
        };
        let e = decode_inputs(missing).expect_err("one raw entry for two inputs");
        assert!(e.contains("1 entries for 2 inputs"), "{e}");
    }

    #[test]
    fn outputs_are_raw_little_endian() {
        let (described, raw) = encode_outputs(&[NamedTensor {
            name: "p".into(),
            shape: vec![1, 2],
            data: TensorData::Fp32(vec![0.25, 0.75]),
        }]);
        assert_eq!(described[0].datatype, "FP32");
        assert_eq!(described[0].shape, vec![1, 2]);
        assert_eq!(&raw[0][..4], &0.25f32.to_le_bytes());
        assert_eq!(raw[0].len(), 8);
    }
}
