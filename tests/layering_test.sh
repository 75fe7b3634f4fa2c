#!/usr/bin/env bash
# The dependency rules of STYLE.md, checked on every #include:
#  1. clients/ never includes services/.
#  2. In services/, only the gRPC edge includes gRPC or generated protobuf:
#     services/common/grpc/, services/server/, and files named *_grpc.{h,cc}
#     or *_module.{h,cc}. Domain logic and stores stay plain C++.
#  3. services/common never includes a service; a service never includes
#     another service (they talk through their contracts).
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
report() { echo "layering violation: $1"; fail=1; }

while IFS= read -r f; do
  report "$f includes services/: $(grep -n '#include "services/' "$f" | head -1)"
done < <(grep -rl '#include "services/' clients/ 2>/dev/null)

while IFS= read -r f; do
  case "$f" in
    services/common/grpc/*|services/server/*|*_grpc.h|*_grpc.cc|*_module.h|*_module.cc) ;;
    *) report "$f includes gRPC or generated protobuf outside the gRPC edge" ;;
  esac
done < <(grep -rlE '#include [<"](grpcpp/|grpc/|.*\.pb\.h)' services/ 2>/dev/null)

for svc in consent presession followup; do
  while IFS= read -r f; do
    report "$f (services/common) includes services/$svc"
  done < <(grep -rl "#include \"services/$svc/" services/common 2>/dev/null)
  for other in consent presession followup; do
    [[ "$svc" == "$other" ]] && continue
    while IFS= read -r f; do
      report "$f includes another service's code (services/$other)"
    done < <(grep -rl "#include \"services/$other/" "services/$svc" 2>/dev/null)
  done
done

if (( fail )); then exit 1; fi
echo "layering: clients, services and the gRPC edge keep their boundaries"
