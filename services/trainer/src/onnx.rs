//! Builders for the ONNX graphs the trainer writes; the messages are
//! [`mlops_onnx::proto`]'s.

use prost::Message;

pub use mlops_onnx::proto::*;

// ------------------------------------------------------------- builders

pub fn attr_floats(name: &str, values: Vec<f32>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        floats: values,
        r#type: AttributeType::Floats as i32,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, values: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values,
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}

pub fn attr_strings(name: &str, values: Vec<String>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        strings: values.into_iter().map(String::into_bytes).collect(),
        r#type: AttributeType::Strings as i32,
        ..Default::default()
    }
}

pub fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: Some(value),
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(value),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

pub fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: Some(value.as_bytes().to_vec()),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}

pub fn node(
    op_type: &str,
    domain: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!(
            "{}_{}",
            op_type.to_lowercase(),
            outputs.first().copied().unwrap_or("")
        ),
        op_type: op_type.into(),
        attribute,
        domain: domain.into(),
    }
}

/// A tensor value with dimensions; `None` is a dynamic dimension (`N`).
pub fn value_info(name: &str, elem_type: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Some(v) => Dimension {
                                dim_value: Some(*v),
                                dim_param: None,
                            },
                            None => Dimension {
                                dim_value: None,
                                dim_param: Some("N".into()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

pub fn int64_tensor(name: &str, values: Vec<i64>) -> TensorProto {
    TensorProto {
        dims: vec![values.len() as i64],
        data_type: INT64,
        int64_data: values,
        name: name.into(),
        ..Default::default()
    }
}

/// A model with the standard and ML opsets and `metadata` as its
/// `metadata_props`.
pub fn model(graph: GraphProto, metadata: Vec<(String, String)>, doc: &str) -> Vec<u8> {
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "mlops-trainer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: "mlops".into(),
        model_version: 1,
        doc_string: doc.into(),
        graph: Some(graph),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            },
            OperatorSetIdProto {
                domain: ML_DOMAIN.into(),
                version: ML_OPSET,
            },
        ],
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
    }
    .encode_to_vec()
}
