"""gRPC server reflection, checked with an independent client: python grpcio
stubs generated at test time from proto/grpc/reflection/{v1,v1alpha}/
reflection.proto, and nothing else of ours. Against a real stack it lists
every server's services, fetches cascade.v1.Recommender's descriptors, builds
RecommendRequest dynamically from them (descriptor_pool + message_factory) and
calls Recommend with it, as grpcurl and ghz do without a protoset."""

import importlib
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

TIMEOUT_S = 30
NOT_FOUND = 5
REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def generate_reflection_stubs(out_dir):
    """Compile reflection.proto (both versions) with grpc_tools into out_dir.

    The files are compiled from copies under cascade_test_reflection/: at
    grpc/reflection/... their modules would clash with the grpcio package. The
    proto packages, and so the method paths on the wire, stay the same."""
    root = os.path.join(out_dir, "_proto")
    files = []
    for version in ("v1", "v1alpha"):
        rel = os.path.join("cascade_test_reflection", version, "reflection.proto")
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        shutil.copy(os.path.join(tl.SOURCE_DIR, "proto", "grpc", "reflection", version,
                                 "reflection.proto"), os.path.join(root, rel))
        files.append(rel)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", root, "--python_out=" + out_dir,
           "--grpc_python_out=" + out_dir] + files
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("protoc failed: %s\n%s" % (" ".join(cmd), res.stderr))
    sys.path.insert(0, out_dir)
    mods = {}
    for version in ("v1", "v1alpha"):
        mods[version] = (importlib.import_module("cascade_test_reflection.%s.reflection_pb2"
                                                 % version),
                         importlib.import_module("cascade_test_reflection.%s.reflection_pb2_grpc"
                                                 % version))
    return mods


def message_class(pool, name):
    desc = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


class ReflectionTest(unittest.TestCase):
    tmp = stack = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tl.TempDir("cascade-reflection-")
        cls.channels = {}
        try:
            cls.mods = generate_reflection_stubs(os.path.join(cls.tmp.path, "stubs"))
            config = tl.write_config(os.path.join(cls.tmp.path, "cascade.json"))
            cls.stack = tl.Stack(os.path.join(cls.tmp.path, "stack"), config=config)
            cls.stack.start()
            world = tl.build_world(cls.stack, cls.tmp.path, users=200, items=150, events=8000)
            cls.users = tl.read_tsv_column(os.path.join(world, "users.tsv"))
            for name in tl.PORT_OFFSETS:
                cls.channels[name] = grpc.insecure_channel(cls.stack.addr(name))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for ch in cls.channels.values():
            ch.close()
        if cls.stack is not None:
            cls.stack.stop()
        if cls.tmp is not None:
            cls.tmp.cleanup()

    def ask(self, server, requests, version="v1"):
        """Send the requests on one stream; return the responses, in order."""
        pb, pb_grpc = self.mods[version]
        stub = pb_grpc.ServerReflectionStub(self.channels[server])
        msgs = [pb.ServerReflectionRequest(host="cascade", **r) for r in requests]
        return list(stub.ServerReflectionInfo(iter(msgs), timeout=TIMEOUT_S))

    def test_list_services_of_every_server(self):
        for server, service in tl.HEALTH_SERVICE.items():
            for version in ("v1", "v1alpha"):
                (resp,) = self.ask(server, [{"list_services": ""}], version)
                self.assertEqual(resp.WhichOneof("message_response"), "list_services_response")
                names = sorted(s.name for s in resp.list_services_response.service)
                self.assertEqual(names, sorted((service, "grpc.health.v1.Health") + REFLECTION),
                                 "%s (%s)" % (server, version))
                self.assertEqual(resp.valid_host, "cascade")
                self.assertEqual(resp.original_request.WhichOneof("message_request"),
                                 "list_services")

    def test_descriptor_builds_a_working_recommend_call(self):
        (resp,) = self.ask("orchestrator", [{"file_containing_symbol": "cascade.v1.Recommender"}])
        self.assertEqual(resp.WhichOneof("message_response"), "file_descriptor_response")
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in resp.file_descriptor_response.file_descriptor_proto]
        # The defining file first, then what it imports.
        self.assertEqual(files[0].name, "cascade/v1/recommender.proto")
        self.assertIn("cascade/v1/common.proto", [f.name for f in files])
        pool = descriptor_pool.DescriptorPool()
        pending = list(files)
        while pending:  # add each file once its imports are in the pool
            ready = [f for f in pending
                     if all(d in {g.name for g in files} - {p.name for p in pending}
                            for d in f.dependency)]
            self.assertTrue(ready, "import cycle or missing import in %s"
                            % [f.name for f in pending])
            for f in ready:
                pool.Add(f)
                pending.remove(f)
        method = pool.FindMethodByName("cascade.v1.Recommender.Recommend")
        request_cls = message_class(pool, method.input_type.full_name)
        response_cls = message_class(pool, method.output_type.full_name)
        req = request_cls()
        req.user.user_id = self.users[0]
        req.count = 5
        call = self.channels["orchestrator"].unary_unary(
            "/%s/%s" % (method.containing_service.full_name, method.name),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString)
        out = call(req, timeout=TIMEOUT_S)
        self.assertEqual(len(out.items), 5)
        self.assertEqual(len({it.item_id for it in out.items}), 5)
        self.assertFalse(out.degraded, list(out.degraded_reasons))

    def test_file_by_filename_and_symbols_on_one_stream(self):
        resps = self.ask("recall", [
            {"file_by_filename": "cascade/v1/recall.proto"},
            {"file_containing_symbol": "cascade.v1.Recall.Recall"},       # a method
            {"file_containing_symbol": ".cascade.v1.UserContext.user_id"},  # a field, dotted
            {"file_containing_symbol": "grpc.health.v1.HealthCheckResponse.SERVING"},
            {"file_containing_symbol": "cascade.v1.NoSuchThing"},
            {"file_by_filename": "no/such.proto"},
            {"all_extension_numbers_of_type": "cascade.v1.UserContext"},
        ], version="v1alpha")
        self.assertEqual(len(resps), 7)
        first = [descriptor_pb2.FileDescriptorProto.FromString(
            r.file_descriptor_response.file_descriptor_proto[0]).name for r in resps[:4]]
        self.assertEqual(first, ["cascade/v1/recall.proto", "cascade/v1/recall.proto",
                                 "cascade/v1/common.proto", "grpc/health/v1/health.proto"])
        for r, what in ((resps[4], "cascade.v1.NoSuchThing"), (resps[5], "no/such.proto")):
            self.assertEqual(r.WhichOneof("message_response"), "error_response")
            self.assertEqual(r.error_response.error_code, NOT_FOUND)
            self.assertIn(what, r.error_response.error_message)
        ext = resps[6].all_extension_numbers_response
        self.assertEqual(ext.base_type_name, "cascade.v1.UserContext")
        self.assertEqual(list(ext.extension_number), [])

    def test_empty_request_is_an_error_response(self):
        (resp,) = self.ask("rank", [{}])
        self.assertEqual(resp.WhichOneof("message_response"), "error_response")
        self.assertEqual(resp.error_response.error_code, grpc.StatusCode.INVALID_ARGUMENT.value[0])


class ReflectionAuthTest(unittest.TestCase):
    """With a bearer token configured, reflection requires it (health does not)."""
    tmp = stack = None
    TOKEN = "reflection-test-token"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tl.TempDir("cascade-reflection-auth-")
        try:
            cls.mods = generate_reflection_stubs(os.path.join(cls.tmp.path, "stubs"))
            token_file = os.path.join(cls.tmp.path, "token")
            with open(token_file, "w") as f:
                f.write(cls.TOKEN + "\n")
            cls.stack = tl.Stack(os.path.join(cls.tmp.path, "stack"),
                                 extra_args=["--auth-token-file", token_file])
            cls.stack.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()
        if cls.tmp is not None:
            cls.tmp.cleanup()

    def test_token_required(self):
        pb, pb_grpc = self.mods["v1"]
        with grpc.insecure_channel(self.stack.addr("filter")) as channel:
            stub = pb_grpc.ServerReflectionStub(channel)
            req = [pb.ServerReflectionRequest(list_services="")]
            with self.assertRaises(grpc.RpcError) as ctx:
                list(stub.ServerReflectionInfo(iter(req), timeout=TIMEOUT_S))
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
            (resp,) = stub.ServerReflectionInfo(
                iter(req), timeout=TIMEOUT_S,
                metadata=(("authorization", "Bearer " + self.TOKEN),))
            self.assertIn("cascade.v1.Filter",
                          [s.name for s in resp.list_services_response.service])


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
