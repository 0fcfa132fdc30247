"""tools/test_summary.py: counts JUnit test cases per target, shards included."""

import contextlib
import io
import os
import tempfile

from absl.testing import absltest

from tools import test_summary

_CASES = {"ok": "", "failure": "<failure message='x'/>", "error": "<error message='x'/>",
          "skipped": "<skipped/>"}


def _write_xml(path, *kinds):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cases = "".join(f"<testcase name='t{i}'>{_CASES[k]}</testcase>" for i, k in enumerate(kinds))
    with open(path, "w") as f:
        f.write(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")


class TestSummaryTest(absltest.TestCase):

    def _summary(self, log_lines, files):
        root = tempfile.mkdtemp(dir=self.create_tempdir().full_path)
        for relative, kinds in files.items():
            _write_xml(os.path.join(root, "testlogs", relative), *kinds)
        log = os.path.join(root, "bazel.log")
        with open(log, "w") as f:
            f.write("\n".join(log_lines) + "\n")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = test_summary.main(log, os.path.join(root, "testlogs"))
        return out.getvalue().strip(), code

    def test_counts_cases_over_targets_and_shards(self):
        line, code = self._summary(
            ["//tests/a:one_test    PASSED in 3.0s",
             "//tests/a:sharded_test   (cached) PASSED in 9.1s",
             "INFO: Build completed successfully"],
            {"tests/a/one_test/test.xml": ["ok", "ok", "skipped"],
             "tests/a/sharded_test/shard_1_of_2/test.xml": ["ok"],
             "tests/a/sharded_test/shard_2_of_2/test.xml": ["ok", "ok"]})
        self.assertEqual(line, "5 passed, 0 failed")
        self.assertEqual(code, 0)

    def test_failures_errors_and_targets_without_results(self):
        line, code = self._summary(
            ["//tests/a:bad_test   FAILED in 2.0s",
             "//tests/b:slow_test   TIMEOUT in 300.0s",
             "//tests/b:broken_test   FAILED TO BUILD"],
            {"tests/a/bad_test/test.xml": ["ok", "failure", "error"]})
        self.assertEqual(line, "1 passed, 4 failed")
        self.assertEqual(code, 1)


if __name__ == "__main__":
    absltest.main()
