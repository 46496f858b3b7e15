# CI smoke test of avs-kv-bench (ctest, label cpu): the tiny model on the CPU backend with three formats
# and one offload run must exit 0 and write a kv-formats JSON with every metric of those runs (as
# "_custom" keys: not the issue's 1.3B setup), the drift curves and the offload's bit-identity.
#   cmake -DEXE=<avs-kv-bench> -DOUT=<dir> -P kv_smoke_test.cmake
file(REMOVE_RECURSE "${OUT}")
execute_process(COMMAND "${EXE}" --backend cpu --config tiny --height 64 --width 64 --window 6 --seconds 3
                        --formats bf16,fp8,int4 --offload bf16 --offload-chunks 12 --out "${OUT}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "avs-kv-bench exited with ${rc}")
endif()
file(GLOB results "${OUT}/*-cpu-kv-formats.json")
list(LENGTH results n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one *-cpu-kv-formats.json in ${OUT}, found ${n}")
endif()
file(READ "${results}" doc)
string(JSON bench ERROR_VARIABLE e GET "${doc}" bench)
if(e OR NOT bench STREQUAL "kv-formats")
  message(FATAL_ERROR "bench is '${bench}' ${e}")
endif()
foreach(key kv_bytes_w21_bf16_custom kv_bytes_w21_fp8_custom kv_bytes_w21_int4_custom peak_vram_w21_bf16_custom
            fps_w21_bf16_custom fps_w21_fp8_custom fps_w21_int4_custom fps_w21_bf16_offload_custom psnr_fp8_custom psnr_int4_custom)
  string(JSON v ERROR_VARIABLE e GET "${doc}" metrics ${key})
  if(e OR NOT v GREATER 0)
    message(FATAL_ERROR "metrics.${key} missing or not positive: '${v}' ${e}")
  endif()
endforeach()
# fewer bytes for the smaller formats
string(JSON b16 GET "${doc}" metrics kv_bytes_w21_bf16_custom)
string(JSON b8 GET "${doc}" metrics kv_bytes_w21_fp8_custom)
string(JSON b4 GET "${doc}" metrics kv_bytes_w21_int4_custom)
if(NOT b8 LESS b16 OR NOT b4 LESS b8)
  message(FATAL_ERROR "KV bytes do not fall with the format: bf16 ${b16}, fp8 ${b8}, int4 ${b4}")
endif()
string(JSON same ERROR_VARIABLE e GET "${doc}" details bf16_offload bit_identical_to_resident)
if(e OR NOT same)
  message(FATAL_ERROR "offload is not bit-identical to the resident cache: '${same}' ${e}")
endif()
string(JSON nc ERROR_VARIABLE e LENGTH "${doc}" curves int4 latent_psnr)
if(e OR nc LESS 3)
  message(FATAL_ERROR "no int4 drift curve (${nc} chunks) ${e}")
endif()
