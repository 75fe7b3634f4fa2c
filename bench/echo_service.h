// The echo ceiling as a ServiceModule, so that ServerHost serves it next to
// the real services with the same TLS, limits and threads.
#ifndef CARESEAL_BENCH_ECHO_SERVICE_H_
#define CARESEAL_BENCH_ECHO_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "careseal/bench/v1/echo.grpc.pb.h"
#include "services/common/grpc/server_host.h"

namespace careseal::bench {

inline constexpr char kEchoServiceName[] = "careseal.bench.v1.EchoService";

class EchoModule final : public ServiceModule {
 public:
  std::vector<std::string> ServiceNames() const override {
    return {kEchoServiceName};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {&service_}; }

 private:
  class Service final : public v1::EchoService::CallbackService {
    grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                   const v1::EchoRequest* request,
                                   v1::EchoResponse* response) override;
  };
  Service service_;
};

}  // namespace careseal::bench

#endif  // CARESEAL_BENCH_ECHO_SERVICE_H_
