# libFuzzer target for engine/model_file (include from fuzz/CMakeLists.txt; needs GLIDE_FUZZ=ON).
# The reader sources are compiled into the fuzzer itself with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION,
# which skips the header and table-of-contents checksums so mutations reach the structural checks;
# glide_engine (and its tests) keep the checksums.
set(GLIDE_ENGINE_DIR ${CMAKE_CURRENT_LIST_DIR}/../engine)
add_executable(model_file_fuzz ${CMAKE_CURRENT_LIST_DIR}/model_file_fuzz.cpp
               ${GLIDE_ENGINE_DIR}/model_file.cpp ${GLIDE_ENGINE_DIR}/checksum.cpp
               ${GLIDE_ENGINE_DIR}/byte_planes.cpp)
target_compile_definitions(model_file_fuzz PRIVATE FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
target_link_libraries(model_file_fuzz PRIVATE glide_data glide_common zstd::libzstd_shared TBB::tbb
                      glide_warnings)
target_link_options(model_file_fuzz PRIVATE -fsanitize=fuzzer)
