"""The descriptor set the build writes (build/cascade.protoset, for ghz and
grpcurl --protoset) is a valid FileDescriptorSet that carries every service,
method and imported file, so those tools can call Cascade without our .proto
files at hand."""
import os
import sys
import unittest

from google.protobuf import descriptor_pb2, descriptor_pool

BUILD_DIR = os.environ.get("CASCADE_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")

EXPECTED = {
    "cascade.v1.Recall": ["Recall"],
    "cascade.v1.Filter": ["Filter", "RecordExposure"],
    "cascade.v1.PreRank": ["Score"],
    "cascade.v1.Rank": ["Score"],
    "cascade.v1.ReRank": ["ReRank"],
    "cascade.v1.Recommender": ["Recommend", "Feedback", "PutItems"],
    "grpc.health.v1.Health": ["Check", "Watch"],
}


class ProtosetTest(unittest.TestCase):
    def test_protoset_has_every_service(self):
        path = os.path.join(BUILD_DIR, "cascade.protoset")
        with open(path, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
        pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:  # --include_imports puts dependencies first
            pool.Add(fd)
        for service, methods in EXPECTED.items():
            desc = pool.FindServiceByName(service)
            self.assertEqual(sorted(m.name for m in desc.methods), sorted(methods), service)
        recommend = pool.FindMethodByName("cascade.v1.Recommender.Recommend")
        self.assertEqual(recommend.input_type.full_name, "cascade.v1.RecommendRequest")
        # The request's nested user context resolves across files (common.proto imported).
        self.assertEqual(recommend.input_type.fields_by_name["user"].message_type.full_name,
                         "cascade.v1.UserContext")
        watch = pool.FindMethodByName("grpc.health.v1.Health.Watch")
        self.assertTrue(watch.server_streaming)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
