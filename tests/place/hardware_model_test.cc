#include "tools/solve_placement/hardware_model.h"

#include <fstream>

#include "gtest/gtest.h"
#include "tests/place/test_models.h"
#include "tools/solve_placement/calibrate.h"

namespace pinfer {
namespace {

using testing_support::TempPath;

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(HardwareModelTest, PresetsUseTheDataSheetFigures) {
  absl::StatusOr<HardwareModel> h100 = GpuPreset("h100");
  ASSERT_TRUE(h100.ok());
  EXPECT_DOUBLE_EQ(h100->gpu_bandwidth, 3350e9 * 0.8);
  EXPECT_DOUBLE_EQ(h100->link_bandwidth, 63e9 * 0.8);
  EXPECT_DOUBLE_EQ(GpuPreset("rtx4090")->gpu_bandwidth, 1008e9 * 0.8);
  EXPECT_DOUBLE_EQ(GpuPreset("a100")->gpu_bandwidth, 2039e9 * 0.8);
  absl::StatusOr<HardwareModel> unknown = GpuPreset("tpu");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("rtx4090, a100, h100"), std::string::npos);
  // Two 10 us copies of a 4 KiB vector over 25.2 GB/s, plus a 10 us synchronisation.
  const HardwareModel def;
  EXPECT_NEAR(def.SyncSeconds(1024), 2 * (10e-6 + 4096 / 25e9) + 10e-6, 1e-12);
}

TEST(HardwareModelTest, FileRoundTripsAndOverridesThePreset) {
  HardwareModel hw = *GpuPreset("a100");
  hw.name = "lab box";
  hw.cpu_bandwidth = 77e9;
  hw.cpu_sparse_bandwidth = 33e9;
  hw.cpu_source = "measured";
  hw.sync_s = 3e-6;
  const std::string path = TempPath("hw.json");
  ASSERT_TRUE(WriteHardwareFile(path, hw).ok());
  absl::StatusOr<HardwareModel> back = ReadHardwareFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "lab box");
  EXPECT_EQ(back->gpu, "a100");
  EXPECT_NEAR(back->gpu_bandwidth, hw.gpu_bandwidth, 1e-3);
  EXPECT_NEAR(back->cpu_bandwidth, 77e9, 1e-3);
  EXPECT_NEAR(back->cpu_sparse_bandwidth, 33e9, 1e-3);
  EXPECT_NEAR(back->sync_s, 3e-6, 1e-15);
  EXPECT_EQ(back->cpu_source, "measured");

  // Partial file: the named preset fills the rest.
  WriteText(path, R"({"gpu": {"name": "h100"}, "cpu": {"bandwidth_gbps": 50}})");
  back = ReadHardwareFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "h100");
  EXPECT_DOUBLE_EQ(back->gpu_bandwidth, 3350e9 * 0.8);
  EXPECT_DOUBLE_EQ(back->cpu_bandwidth, 50e9);
  EXPECT_DOUBLE_EQ(back->cpu_sparse_bandwidth, HardwareModel().cpu_sparse_bandwidth);
}

TEST(HardwareModelTest, BadFilesNameTheFileAndTheField) {
  const std::string path = TempPath("bad.json");
  const std::pair<std::string, std::string> cases[] = {
      {"{not json", "not valid JSON"},
      {R"({"cpu": {"bandwith_gbps": 40}})", "unknown field 'bandwith_gbps'"},
      {R"({"cpu": {"bandwidth_gbps": -1}})", "cpu.bandwidth_gbps must be a positive number"},
      {R"({"gpu": {"name": "tpu"}})", "unknown GPU 'tpu'"},
      {R"({"link": []})", "link must be an object"},
  };
  for (const auto& [text, message] : cases) {
    WriteText(path, text);
    absl::StatusOr<HardwareModel> hw = ReadHardwareFile(path);
    ASSERT_FALSE(hw.ok()) << text;
    EXPECT_NE(hw.status().message().find(path), std::string::npos) << hw.status();
    EXPECT_NE(hw.status().message().find(message), std::string::npos) << hw.status();
  }
  EXPECT_FALSE(ReadHardwareFile(TempPath("missing.json")).ok());
}

TEST(HardwareModelTest, CalibrationMeasuresPositiveFigures) {
  CalibrateOptions options;
  options.buffer_bytes = 16 << 20;  // small: a test, not a measurement
  options.repeats = 1;
  absl::StatusOr<CpuMeasurement> m = MeasureCpu(options);
  ASSERT_TRUE(m.ok()) << m.status();
  // Positive and finite: speed is for bench/, and CI machines are shared.
  EXPECT_GT(m->read_bandwidth, 1e6);
  EXPECT_GT(m->scattered_bandwidth, 1e6);
  EXPECT_GT(m->matvec_bandwidth, 1e6);
  const HardwareModel hw = WithMeasuredCpu(HardwareModel(), *m);
  EXPECT_LE(hw.cpu_bandwidth, m->read_bandwidth);
  EXPECT_LE(hw.cpu_sparse_bandwidth, m->scattered_bandwidth);
  EXPECT_NE(hw.cpu_source.find("--calibrate"), std::string::npos);
  options.buffer_bytes = 1000;
  EXPECT_FALSE(MeasureCpu(options).ok());
}

}  // namespace
}  // namespace pinfer
