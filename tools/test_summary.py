"""Prints a plain `N passed, M failed` line for a `bazel test` run.

Bazel's own summary counts targets; CI wants test cases. For every test target in the
log we read its JUnit `test.xml` and count the test cases there (summed over the shards of a sharded target); a target that did not
produce one (build failure, timeout, crash) counts as one failed case.

Usage: test_summary.py BAZEL_LOG TESTLOGS_DIR
"""

import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

_TARGET_LINE = re.compile(
    r"^(//[^\s:]*:\S+)\s+(?:\(cached\)\s+)?"
    r"(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)\b"
)


def count_cases(xml_path):
  """Returns (passed, failed) test cases in one JUnit XML file."""
  root = ET.parse(xml_path).getroot()
  passed = failed = 0
  for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
      failed += 1
    elif case.find("skipped") is None and case.get("status") != "notrun":
      passed += 1
  return passed, failed


def main(log_path, testlogs):
  passed = failed = 0
  with open(log_path, errors="replace") as f:
    lines = f.read().splitlines()
  for line in lines:
    m = _TARGET_LINE.match(line.strip())
    if not m:
      continue
    target, status = m.groups()
    package, name = target[2:].split(":")
    # A sharded target writes one file per shard: <name>/shard_K_of_N/test.xml.
    target_dir = os.path.join(testlogs, package, name)
    xml_paths = (glob.glob(os.path.join(target_dir, "shard_*_of_*", "test.xml"))
                 or glob.glob(os.path.join(target_dir, "test.xml")))
    cases = (0, 0)
    if status in ("PASSED", "FAILED", "FLAKY"):
      for xml_path in xml_paths:
        try:
          shard = count_cases(xml_path)
        except ET.ParseError:
          continue
        cases = (cases[0] + shard[0], cases[1] + shard[1])
    if status not in ("PASSED", "FLAKY") and cases[1] == 0:
      cases = (cases[0], 1)
    passed += cases[0]
    failed += cases[1]
  print(f"{passed} passed, {failed} failed")
  return 0 if failed == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1], sys.argv[2]))
