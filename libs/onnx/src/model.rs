//! Any ONNX model as named tensors in and out: the Open Inference Protocol's
//! view, which the gateway serves. The platform's own models are one case;
//! scikit-learn models exported by skl2onnx with its default options are
//! another, including their `ZipMap` output (a sequence of class → probability
//! maps), which is served as a float32 `[rows, classes]` tensor with the
//! classes in ascending order.
//!
//! ONNX Runtime runs one call per session at a time, so a model holds a small
//! pool of sessions and a call takes a free one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use ort::session::Session;
use ort::value::{DynMapValueType, DynValue, Tensor, TensorElementType, ValueType};

use crate::{Error, Result, new_session, read_metadata};

/// An Open Inference Protocol tensor datatype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    Uint8,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    pub const ALL: [DataType; 9] = [
        Self::Bool,
        Self::Uint8,
        Self::Int8,
        Self::Int16,
        Self::Int32,
        Self::Int64,
        Self::Fp32,
        Self::Fp64,
        Self::Bytes,
    ];

    /// The protocol's name (`FP32`, `BYTES`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::Uint8 => "UINT8",
            Self::Int8 => "INT8",
            Self::Int16 => "INT16",
            Self::Int32 => "INT32",
            Self::Int64 => "INT64",
            Self::Fp32 => "FP32",
            Self::Fp64 => "FP64",
            Self::Bytes => "BYTES",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Bytes per element in the binary tensor encoding; `None` for `BYTES`,
    /// whose elements are length-prefixed.
    pub fn element_size(self) -> Option<usize> {
        match self {
            Self::Bool | Self::Uint8 | Self::Int8 => Some(1),
            Self::Int16 => Some(2),
            Self::Int32 | Self::Fp32 => Some(4),
            Self::Int64 | Self::Fp64 => Some(8),
            Self::Bytes => None,
        }
    }

    fn from_ort(ty: TensorElementType) -> Option<Self> {
        Some(match ty {
            TensorElementType::Bool => Self::Bool,
            TensorElementType::Uint8 => Self::Uint8,
            TensorElementType::Int8 => Self::Int8,
            TensorElementType::Int16 => Self::Int16,
            TensorElementType::Int32 => Self::Int32,
            TensorElementType::Int64 => Self::Int64,
            TensorElementType::Float32 => Self::Fp32,
            TensorElementType::Float64 => Self::Fp64,
            TensorElementType::String => Self::Bytes,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor's elements, flat in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Uint8(Vec<u8>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl TensorData {
    pub fn datatype(&self) -> DataType {
        match self {
            Self::Bool(_) => DataType::Bool,
            Self::Uint8(_) => DataType::Uint8,
            Self::Int8(_) => DataType::Int8,
            Self::Int16(_) => DataType::Int16,
            Self::Int32(_) => DataType::Int32,
            Self::Int64(_) => DataType::Int64,
            Self::Fp32(_) => DataType::Fp32,
            Self::Fp64(_) => DataType::Fp64,
            Self::Bytes(_) => DataType::Bytes,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Bool(v) => v.len(),
            Self::Uint8(v) => v.len(),
            Self::Int8(v) => v.len(),
            Self::Int16(v) => v.len(),
            Self::Int32(v) => v.len(),
            Self::Int64(v) => v.len(),
            Self::Fp32(v) => v.len(),
            Self::Fp64(v) => v.len(),
            Self::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// A model input or output as the protocol describes it; `-1` is a
/// dimension of any size.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// How an output's value becomes a tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    Tensor,
    /// A sequence of class → probability maps (skl2onnx's `ZipMap`).
    ClassMaps,
}

/// Sessions per model and ONNX Runtime threads per session.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub sessions: usize,
    pub intra_threads: usize,
}

pub struct Model {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    inputs: Vec<TensorSpec>,
    outputs: Vec<(TensorSpec, Layout)>,
    metadata: Vec<(String, String)>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("sessions", &self.sessions.len())
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads a model from its bytes; [`crate::init`] must have succeeded.
    /// Fails on inputs or outputs the protocol cannot carry.
    pub fn load(bytes: &[u8], options: LoadOptions) -> Result<Self> {
        let first = new_session(bytes, options.intra_threads)?;
        let mut inputs = Vec::new();
        for outlet in first.inputs() {
            match outlet.dtype() {
                ValueType::Tensor { ty, shape, .. } => {
                    let datatype = DataType::from_ort(*ty).ok_or_else(|| {
                        Error::Model(format!(
                            "input {:?} has element type {ty:?}, which cannot be served",
                            outlet.name()
                        ))
                    })?;
                    inputs.push(TensorSpec {
                        name: outlet.name().to_string(),
                        datatype,
                        shape: shape.to_vec(),
                    });
                }
                other => {
                    return Err(Error::Model(format!(
                        "input {:?} is {other:?}, not a tensor",
                        outlet.name()
                    )));
                }
            }
        }
        let mut outputs = Vec::new();
        for outlet in first.outputs() {
            let name = outlet.name().to_string();
            let spec = match outlet.dtype() {
                ValueType::Tensor { ty, shape, .. } => DataType::from_ort(*ty).map(|datatype| {
                    (
                        TensorSpec {
                            name: name.clone(),
                            datatype,
                            shape: shape.to_vec(),
                        },
                        Layout::Tensor,
                    )
                }),
                ValueType::Sequence(inner)
                    if matches!(
                        **inner,
                        ValueType::Map {
                            value: TensorElementType::Float32,
                            ..
                        }
                    ) =>
                {
                    Some((
                        TensorSpec {
                            name: name.clone(),
                            datatype: DataType::Fp32,
                            shape: vec![-1, -1],
                        },
                        Layout::ClassMaps,
                    ))
                }
                _ => None,
            };
            outputs.push(spec.ok_or_else(|| {
                Error::Model(format!(
                    "output {name:?} is {:?}, which cannot be served as a tensor",
                    outlet.dtype()
                ))
            })?);
        }
        let metadata = read_metadata(&first)?;
        let mut sessions = vec![Mutex::new(first)];
        for _ in 1..options.sessions.max(1) {
            sessions.push(Mutex::new(new_session(bytes, options.intra_threads)?));
        }
        Ok(Self {
            sessions,
            next: AtomicUsize::new(0),
            inputs,
            outputs,
            metadata,
        })
    }

    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    pub fn outputs(&self) -> impl Iterator<Item = &TensorSpec> {
        self.outputs.iter().map(|(spec, _)| spec)
    }

    /// Every `metadata_props` entry, sorted by key.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Runs the model. Every input must be given, with the model's datatype
    /// and a shape its dimensions allow; `requested` names the outputs to
    /// return (all when empty). Bad input is [`Error::Input`].
    pub fn run(&self, inputs: Vec<NamedTensor>, requested: &[String]) -> Result<Vec<NamedTensor>> {
        let wanted: Vec<&(TensorSpec, Layout)> = if requested.is_empty() {
            self.outputs.iter().collect()
        } else {
            requested
                .iter()
                .map(|name| {
                    self.outputs
                        .iter()
                        .find(|(spec, _)| &spec.name == name)
                        .ok_or_else(|| {
                            Error::Input(format!(
                                "unknown output {name:?}; the model's outputs are {}",
                                names(self.outputs.iter().map(|(s, _)| s))
                            ))
                        })
                })
                .collect::<Result<_>>()?
        };
        let values = self.check_inputs(inputs)?;
        let mut session = self.session();
        let run = |e: ort::Error| Error::Run(e.to_string());
        let outputs = session.run(values).map_err(run)?;
        wanted
            .into_iter()
            .map(|(spec, layout)| {
                let value = outputs.get(&spec.name).ok_or_else(|| {
                    Error::Run(format!("output {:?} was not produced", spec.name))
                })?;
                to_tensor(&spec.name, value, *layout)
            })
            .collect()
    }

    fn check_inputs(&self, inputs: Vec<NamedTensor>) -> Result<Vec<(String, DynValue)>> {
        for given in &inputs {
            if !self.inputs.iter().any(|spec| spec.name == given.name) {
                return Err(Error::Input(format!(
                    "unknown input {:?}; the model's inputs are {}",
                    given.name,
                    names(self.inputs.iter())
                )));
            }
            if inputs.iter().filter(|t| t.name == given.name).count() > 1 {
                return Err(Error::Input(format!(
                    "input {:?} is given twice",
                    given.name
                )));
            }
        }
        let mut inputs = inputs;
        let mut values = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let Some(at) = inputs.iter().position(|t| t.name == spec.name) else {
                return Err(Error::Input(format!("input {:?} is missing", spec.name)));
            };
            let tensor = inputs.swap_remove(at);
            check_tensor(spec, &tensor)?;
            values.push((spec.name.clone(), to_value(tensor)?));
        }
        Ok(values)
    }

    /// A free session, or the next one in turn when all are busy.
    fn session(&self) -> MutexGuard<'_, Session> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        for i in 0..n {
            match self.sessions[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.sessions[start % n]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn names<'a>(specs: impl Iterator<Item = &'a TensorSpec>) -> String {
    let names: Vec<String> = specs.map(|s| format!("{:?}", s.name)).collect();
    names.join(", ")
}

fn check_tensor(spec: &TensorSpec, tensor: &NamedTensor) -> Result<()> {
    let datatype = tensor.data.datatype();
    if datatype != spec.datatype {
        return Err(Error::Input(format!(
            "input {:?} has datatype {datatype}; the model expects {}",
            spec.name, spec.datatype
        )));
    }
    let fits = tensor.shape.len() == spec.shape.len()
        && tensor
            .shape
            .iter()
            .zip(&spec.shape)
            .all(|(&got, &want)| want < 0 || got as i64 == want);
    if !fits {
        return Err(Error::Input(format!(
            "input {:?} has shape {:?}; the model expects {:?} (-1: any size)",
            spec.name, tensor.shape, spec.shape
        )));
    }
    let elements: usize = tensor.shape.iter().product();
    if elements != tensor.data.len() {
        return Err(Error::Input(format!(
            "input {:?} has {} values; its shape {:?} holds {elements}",
            spec.name,
            tensor.data.len(),
            tensor.shape
        )));
    }
    Ok(())
}

fn to_value(tensor: NamedTensor) -> Result<DynValue> {
    let shape: Vec<i64> = tensor.shape.iter().map(|&d| d as i64).collect();
    let name = tensor.name;
    let made = match tensor.data {
        TensorData::Bool(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Uint8(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Int8(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Int16(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Int32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Int64(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Fp32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Fp64(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        TensorData::Bytes(v) => {
            let strings = v
                .into_iter()
                .map(String::from_utf8)
                .collect::<std::result::Result<Vec<String>, _>>()
                .map_err(|_| {
                    Error::Input(format!(
                        "input {name:?} holds bytes that are not UTF-8 text"
                    ))
                })?;
            Tensor::from_string_array((shape, strings.as_slice())).map(Tensor::into_dyn)
        }
    };
    made.map_err(|e| Error::Input(format!("input {name:?}: {e}")))
}

fn to_tensor(name: &str, value: &DynValue, layout: Layout) -> Result<NamedTensor> {
    let run = |e: ort::Error| Error::Run(format!("output {name:?}: {e}"));
    if layout == Layout::ClassMaps {
        return class_maps(name, value);
    }
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(Error::Run(format!("output {name:?} is not a tensor")));
    };
    fn dims(shape: &[i64]) -> Vec<usize> {
        shape.iter().map(|&d| d.max(0) as usize).collect()
    }
    macro_rules! numeric {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = value.try_extract_tensor::<$t>().map_err(run)?;
            (dims(shape), TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match ty {
        TensorElementType::Bool => numeric!(bool, Bool),
        TensorElementType::Uint8 => numeric!(u8, Uint8),
        TensorElementType::Int8 => numeric!(i8, Int8),
        TensorElementType::Int16 => numeric!(i16, Int16),
        TensorElementType::Int32 => numeric!(i32, Int32),
        TensorElementType::Int64 => numeric!(i64, Int64),
        TensorElementType::Float32 => numeric!(f32, Fp32),
        TensorElementType::Float64 => numeric!(f64, Fp64),
        TensorElementType::String => {
            let (shape, strings) = value.try_extract_strings().map_err(run)?;
            (
                dims(shape),
                TensorData::Bytes(strings.into_iter().map(String::into_bytes).collect()),
            )
        }
        other => {
            return Err(Error::Run(format!(
                "output {name:?} has element type {other:?}, which cannot be served"
            )));
        }
    };
    Ok(NamedTensor {
        name: name.to_string(),
        shape,
        data,
    })
}

/// A sequence of class → probability maps as `[rows, classes]`, classes
/// ascending; every row must have the same classes.
fn class_maps(name: &str, value: &DynValue) -> Result<NamedTensor> {
    let run = |e: ort::Error| Error::Run(format!("output {name:?}: {e}"));
    let maps = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(run)?;
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(maps.len());
    let mut classes: Option<Vec<String>> = None;
    for map in &maps {
        let mut pairs: Vec<(String, f32)> = match map.dtype() {
            ValueType::Map {
                key: TensorElementType::Int64,
                ..
            } => {
                let mut pairs = map.try_extract_key_values::<i64, f32>().map_err(run)?;
                pairs.sort_by_key(|(k, _)| *k);
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            }
            _ => {
                let mut pairs = map.try_extract_key_values::<String, f32>().map_err(run)?;
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                pairs
            }
        };
        let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        match &classes {
            None => classes = Some(keys),
            Some(known) if *known == keys => {}
            Some(_) => {
                return Err(Error::Run(format!(
                    "output {name:?}: rows have different classes"
                )));
            }
        }
        rows.push(pairs.drain(..).map(|(_, v)| v).collect());
    }
    let width = classes.map_or(0, |c| c.len());
    Ok(NamedTensor {
        name: name.to_string(),
        shape: vec![rows.len(), width],
        data: TensorData::Fp32(rows.concat()),
    })
}
