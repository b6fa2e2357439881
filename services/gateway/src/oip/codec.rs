//! Inference requests and responses of the Open Inference Protocol's REST
//! binding: JSON tensors (flat or nested `data`) and the binary tensor
//! extension (`Inference-Header-Content-Length`: a JSON header, then each
//! binary tensor's bytes in order, little-endian; `BYTES` elements are each
//! a 4-byte length and the bytes).

use mlops_onnx::model::{DataType, NamedTensor, TensorData};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Parameter of an input: how many of the binary section's bytes it takes.
const BINARY_DATA_SIZE: &str = "binary_data_size";
/// Request parameter: every output in binary.
const BINARY_DATA_OUTPUT: &str = "binary_data_output";
/// Output parameter: this output in binary.
const BINARY_DATA: &str = "binary_data";

#[derive(Debug, Deserialize)]
struct RequestHeader {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Vec<RequestOutput>,
}

#[derive(Debug, Deserialize)]
struct RequestInput {
    name: String,
    shape: Vec<u64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RequestOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// A decoded inference request.
#[derive(Debug)]
pub struct InferRequest {
    pub id: Option<String>,
    pub inputs: Vec<NamedTensor>,
    /// Outputs asked for (all when empty), each with whether it is wanted
    /// in binary.
    pub outputs: Vec<(String, bool)>,
    /// Whether outputs not named in `outputs` are wanted in binary.
    pub binary_by_default: bool,
}

/// Decodes a request body; `header_length` is the value of
/// `Inference-Header-Content-Length` when the body has a binary section.
pub fn decode_request(body: &[u8], header_length: Option<usize>) -> Result<InferRequest, String> {
    let (json, mut binary) = match header_length {
        Some(n) if n > body.len() => {
            return Err(format!(
                "Inference-Header-Content-Length is {n} but the body has {} bytes",
                body.len()
            ));
        }
        Some(n) => body.split_at(n),
        None => (body, &[][..]),
    };
    let header: RequestHeader = serde_json::from_slice(json)
        .map_err(|e| format!("the request is not a valid inference request: {e}"))?;
    if header.inputs.is_empty() {
        return Err("inputs: at least one input is required".into());
    }
    let mut inputs = Vec::with_capacity(header.inputs.len());
    for (i, input) in header.inputs.into_iter().enumerate() {
        let field = format!("inputs[{i}] ({:?})", input.name);
        let datatype = parse_datatype(&field, &input.datatype)?;
        let (shape, elements) = parse_shape(&field, &input.shape)?;
        let data = match (input.parameters.get(BINARY_DATA_SIZE), input.data) {
            (Some(size), None) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        format!("{field}.parameters.{BINARY_DATA_SIZE} must be a byte count")
                    })?;
                if size > binary.len() {
                    return Err(format!(
                        "{field}: {BINARY_DATA_SIZE} is {size} but only {} binary bytes remain",
                        binary.len()
                    ));
                }
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                decode_binary(datatype, bytes).map_err(|e| format!("{field}: {e}"))?
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{field}: has both data and {BINARY_DATA_SIZE}; give one"
                ));
            }
            (None, Some(data)) => {
                decode_json(datatype, data).map_err(|e| format!("{field}.data: {e}"))?
            }
            (None, None) => return Err(format!("{field}.data is missing")),
        };
        check_length(&field, &shape, elements, &data)?;
        inputs.push(NamedTensor {
            name: input.name,
            shape,
            data,
        });
    }
    if !binary.is_empty() {
        return Err(format!(
            "{} binary bytes are not claimed by any input's {BINARY_DATA_SIZE}",
            binary.len()
        ));
    }
    let binary_by_default = flag(&header.parameters, BINARY_DATA_OUTPUT);
    let outputs = header
        .outputs
        .into_iter()
        .map(|o| {
            let binary = o
                .parameters
                .get(BINARY_DATA)
                .map_or(binary_by_default, |v| v.as_bool().unwrap_or(false));
            (o.name, binary)
        })
        .collect();
    Ok(InferRequest {
        id: header.id,
        inputs,
        outputs,
        binary_by_default,
    })
}

/// The datatype an input names; `field` says which input, for the error.
pub fn parse_datatype(field: &str, name: &str) -> Result<DataType, String> {
    DataType::parse(name).ok_or_else(|| {
        format!(
            "{field}.datatype: {name:?} is not a supported datatype ({})",
            DataType::ALL.map(DataType::name).join(", ")
        )
    })
}

/// An input's shape and how many elements it holds.
pub fn parse_shape<D>(field: &str, dims: &[D]) -> Result<(Vec<usize>, usize), String>
where
    D: Copy + std::fmt::Display + TryInto<usize>,
{
    let shape: Vec<usize> = dims
        .iter()
        .map(|&d| {
            d.try_into()
                .map_err(|_| format!("{field}.shape: {d} is not a dimension size"))
        })
        .collect::<Result<_, _>>()?;
    let elements = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("{field}.shape: {shape:?} has too many elements"))?;
    Ok((shape, elements))
}

/// The data holds exactly the elements the shape says.
pub fn check_length(
    field: &str,
    shape: &[usize],
    elements: usize,
    data: &TensorData,
) -> Result<(), String> {
    if data.len() == elements {
        Ok(())
    } else {
        Err(format!(
            "{field}: shape {shape:?} holds {elements} values but {} were given",
            data.len()
        ))
    }
}

fn flag(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Flattens nested arrays (row-major) and converts each element.
fn decode_json(datatype: DataType, data: Value) -> Result<TensorData, String> {
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    let bad = |i: usize, v: &Value, what: &str| format!("element {i} is {v}, not {what}");
    macro_rules! ints {
        ($t:ty, $variant:ident) => {{
            let mut out = Vec::with_capacity(flat.len());
            for (i, v) in flat.iter().enumerate() {
                let n = v
                    .as_i64()
                    .and_then(|n| <$t>::try_from(n).ok())
                    .or_else(|| v.as_u64().and_then(|n| <$t>::try_from(n).ok()))
                    .ok_or_else(|| bad(i, v, concat!("an integer in range of ", stringify!($t))))?;
                out.push(n);
            }
            TensorData::$variant(out)
        }};
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(
            flat.iter()
                .enumerate()
                .map(|(i, v)| v.as_bool().ok_or_else(|| bad(i, v, "true or false")))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Uint8 => ints!(u8, Uint8),
        DataType::Int8 => ints!(i8, Int8),
        DataType::Int16 => ints!(i16, Int16),
        DataType::Int32 => ints!(i32, Int32),
        DataType::Int64 => ints!(i64, Int64),
        DataType::Fp32 => TensorData::Fp32(
            flat.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_f64()
                        .map(|x| x as f32)
                        .ok_or_else(|| bad(i, v, "a number"))
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Fp64 => TensorData::Fp64(
            flat.iter()
                .enumerate()
                .map(|(i, v)| v.as_f64().ok_or_else(|| bad(i, v, "a number")))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Bytes => TensorData::Bytes(
            flat.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(|s| s.as_bytes().to_vec())
                        .ok_or_else(|| bad(i, v, "a string"))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, out);
            }
        }
        other => out.push(other),
    }
}

/// Decodes a tensor's little-endian bytes (`BYTES`: length-prefixed).
pub fn decode_binary(datatype: DataType, bytes: &[u8]) -> Result<TensorData, String> {
    if datatype == DataType::Bytes {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or("a BYTES element is cut off before its 4-byte length")?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > tail.len() {
                return Err(format!(
                    "a BYTES element claims {len} bytes but {} remain",
                    tail.len()
                ));
            }
            out.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        return Ok(TensorData::Bytes(out));
    }
    let size = datatype.element_size().unwrap_or(1);
    if !bytes.len().is_multiple_of(size) {
        return Err(format!(
            "{} binary bytes are not a whole number of {datatype} elements",
            bytes.len()
        ));
    }
    macro_rules! le {
        ($t:ty, $variant:ident) => {
            TensorData::$variant(
                bytes
                    .chunks_exact(size)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect(),
            )
        };
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DataType::Uint8 => TensorData::Uint8(bytes.to_vec()),
        DataType::Int8 => le!(i8, Int8),
        DataType::Int16 => le!(i16, Int16),
        DataType::Int32 => le!(i32, Int32),
        DataType::Int64 => le!(i64, Int64),
        DataType::Fp32 => le!(f32, Fp32),
        DataType::Fp64 => le!(f64, Fp64),
        DataType::Bytes => unreachable!("handled above"),
    })
}

/// Appends a tensor's elements as `decode_binary` reads them.
pub fn encode_binary(data: &TensorData, out: &mut Vec<u8>) {
    match data {
        TensorData::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        TensorData::Uint8(v) => out.extend_from_slice(v),
        TensorData::Int8(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        TensorData::Int16(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        TensorData::Int32(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        TensorData::Int64(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        TensorData::Fp32(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        TensorData::Fp64(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        TensorData::Bytes(v) => {
            for item in v {
                out.extend((item.len() as u32).to_le_bytes());
                out.extend_from_slice(item);
            }
        }
    }
}

fn json_data(data: &TensorData) -> Value {
    match data {
        TensorData::Bool(v) => json!(v),
        TensorData::Uint8(v) => json!(v),
        TensorData::Int8(v) => json!(v),
        TensorData::Int16(v) => json!(v),
        TensorData::Int32(v) => json!(v),
        TensorData::Int64(v) => json!(v),
        TensorData::Fp32(v) => json!(v),
        TensorData::Fp64(v) => json!(v),
        TensorData::Bytes(v) => Value::Array(
            v.iter()
                .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                .collect(),
        ),
    }
}

/// An encoded response: the body, and the JSON header's length when a
/// binary section follows it.
pub struct Encoded {
    pub body: Vec<u8>,
    pub header_length: Option<usize>,
}

/// Encodes outputs; `binary(name)` says which go in the binary section.
pub fn encode_response(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    outputs: &[NamedTensor],
    binary: impl Fn(&str) -> bool,
) -> Encoded {
    let mut section = Vec::new();
    let mut described = Vec::with_capacity(outputs.len());
    for output in outputs {
        let mut tensor = json!({
            "name": output.name,
            "datatype": output.data.datatype().name(),
            "shape": output.shape,
        });
        if binary(&output.name) {
            let before = section.len();
            encode_binary(&output.data, &mut section);
            tensor["parameters"] = json!({ BINARY_DATA_SIZE: section.len() - before });
        } else {
            tensor["data"] = json_data(&output.data);
        }
        described.push(tensor);
    }
    let mut header = json!({
        "model_name": model_name,
        "model_version": model_version,
        "outputs": described,
    });
    if let Some(id) = id {
        header["id"] = json!(id);
    }
    let mut body = serde_json::to_vec(&header).unwrap_or_default();
    if section.is_empty() && !outputs.iter().any(|o| binary(&o.name)) {
        return Encoded {
            body,
            header_length: None,
        };
    }
    let header_length = body.len();
    body.extend_from_slice(&section);
    Encoded {
        body,
        header_length: Some(header_length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_json_give_the_same_tensor() {
        let flat =
            br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4.5]}]}"#;
        let nested =
            br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]}]}"#;
        let a = decode_request(flat, None).expect("flat");
        let b = decode_request(nested, None).expect("nested");
        assert_eq!(a.inputs, b.inputs);
        assert_eq!(a.inputs[0].data, TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.5]));
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"inputs":[]}"#, "at least one input"),
            (
                br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP17","data":[1,2]}]}"#,
                "inputs[0] (\"x\").datatype",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]}"#,
                "holds 3 values but 2 were given",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[300]}]}"#,
                "element 0 is 300",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#,
                "inputs[0] (\"x\").data is missing",
            ),
            (
                br#"{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}"#,
                "missing field `name`",
            ),
        ];
        for (body, want) in cases {
            let error = decode_request(body, None).expect_err(want);
            assert!(error.contains(want), "{error} should contain {want}");
        }
    }

    #[test]
    fn binary_inputs_and_outputs_round_trip() {
        let header = br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}],"parameters":{"binary_data_output":true}}"#;
        let mut body = header.to_vec();
        body.extend(1.5f32.to_le_bytes());
        body.extend((-2.0f32).to_le_bytes());
        body.extend(2u32.to_le_bytes());
        body.extend(b"ab");
        body.extend(1u32.to_le_bytes());
        body.extend(b"c");
        let request = decode_request(&body, Some(header.len())).expect("binary request");
        assert!(request.binary_by_default);
        assert_eq!(request.inputs[0].data, TensorData::Fp32(vec![1.5, -2.0]));
        assert_eq!(
            request.inputs[1].data,
            TensorData::Bytes(vec![b"ab".to_vec(), b"c".to_vec()])
        );

        let encoded = encode_response("m", "3", Some("r1"), &request.inputs, |_| true);
        let split = encoded.header_length.expect("binary response");
        let head: Value = serde_json::from_slice(&encoded.body[..split]).expect("json header");
        assert_eq!(head["model_version"], "3");
        assert_eq!(head["id"], "r1");
        assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(head["outputs"][1]["parameters"]["binary_data_size"], 11);
        assert_eq!(&encoded.body[split..split + 4], &1.5f32.to_le_bytes());
        assert_eq!(encoded.body.len() - split, 19);

        let short = decode_request(&body[..body.len() - 1], Some(header.len())).expect_err("cut");
        assert!(short.contains("remain"), "{short}");
    }
}
