#!/usr/bin/env bash
# Compile the plain-Java core and run its JUnit 5 tests with the JDK and Debian's jars
# (junit5, libandroid-json-java: org.json as Android ships it), installing them when missing.
# The golden files and the hostile corpus must be made first (from the repository root):
#   python scripts/record_golden.py --out android_demo/core/build/golden
#   python scripts/make_hostile_models.py --out android_demo/core/build/hostile
# The tests run under a phone-sized heap (-Xmx256m).
set -euo pipefail
cd "$(dirname "$0")"
J=/usr/share/java
if ! command -v javac >/dev/null || [ ! -e $J/junit-platform-console-standalone.jar ] || [ ! -e $J/com.android.json.jar ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless junit5 libandroid-json-java >/dev/null
fi
rm -rf build/classes build/test-classes
javac -Xlint:all -Werror -d build/classes -cp $J/com.android.json.jar $(find src/main/java -name '*.java')
javac -d build/test-classes -cp build/classes:$J/com.android.json.jar:$J/junit-platform-console-standalone.jar $(find src/test/java -name '*.java')
java -Xmx256m -Dedgecap.golden="${EDGECAP_GOLDEN:-build/golden}" -Dedgecap.hostile="${EDGECAP_HOSTILE:-build/hostile}" -jar $J/junit-platform-console-standalone.jar \
  --class-path build/classes:build/test-classes:$J/com.android.json.jar --scan-class-path --disable-banner --details=summary --fail-if-no-tests
