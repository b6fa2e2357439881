"""A data scientist's Python client of the registry, using grpcio with stubs
generated from proto/ at run time. Registers a model and a version, streams
an artifact up, reads it back, and lists services through server reflection.

Usage: registry_client.py HOST:PORT PROTO_ROOT   (token in MLOPS_TOKEN)
Prints a JSON report as its last line.
"""

import hashlib
import importlib
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def generate_stubs(proto_root: str) -> str:
    out = tempfile.mkdtemp(prefix="registry-stubs-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    status = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "mlops/registry/v1/registry.proto",
    ])
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")
    for package in ("mlops", "mlops/registry", "mlops/registry/v1"):
        open(os.path.join(out, package, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    return out


def main() -> None:
    address, proto_root = sys.argv[1], sys.argv[2]
    generate_stubs(proto_root)
    pb = importlib.import_module("mlops.registry.v1.registry_pb2")
    rpc = importlib.import_module("mlops.registry.v1.registry_pb2_grpc")

    channel = grpc.insecure_channel(address)
    auth = [("authorization", f"Bearer {os.environ['MLOPS_TOKEN']}")]
    stub = rpc.ModelRegistryStub(channel)

    stub.CreateRegisteredModel(pb.CreateRegisteredModelRequest(name="py-churn", description="from Python"), metadata=auth)
    version = stub.CreateModelVersion(
        pb.CreateModelVersionRequest(
            model_name="py-churn",
            format="onnx",
            metrics={"auc": 0.83},
            signature=pb.Signature(inputs=[pb.TensorSpec(name="features", dtype="float32", shape=[-1, 12])]),
        ),
        metadata=auth,
    )

    artifact = bytes((i * 7) % 251 for i in range(300_000))
    digest = hashlib.sha256(artifact).hexdigest()

    def chunks():
        yield pb.UploadArtifactRequest(header=pb.UploadArtifactHeader(
            model_name="py-churn", version=version.version, filename="model.onnx",
            size_bytes=len(artifact), sha256=digest))
        for start in range(0, len(artifact), 64 * 1024):
            yield pb.UploadArtifactRequest(chunk=artifact[start:start + 64 * 1024])

    ready = stub.UploadArtifact(chunks(), metadata=auth)

    received = bytearray()
    info = None
    for message in stub.DownloadArtifact(
        pb.DownloadArtifactRequest(model_name="py-churn", version=version.version), metadata=auth
    ):
        if message.HasField("info"):
            info = message.info
        else:
            received.extend(message.chunk)

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    services = [s.name for r in responses for s in r.list_services_response.service]

    print(json.dumps({
        "version": version.version,
        "status": pb.ModelVersionStatus.Name(ready.status),
        "created_by": ready.created_by,
        "downloaded_matches": bytes(received) == artifact and info is not None and info.sha256 == digest,
        "reflection_services": services,
    }))


if __name__ == "__main__":
    main()
