# cmake -DIN=file -DOUT=header -DNAME=symbol -P embed_bytes.cmake
# Writes IN's bytes into OUT as `inline constexpr unsigned char NAME[] = {...};`, so the
# compiled BPF object travels inside limd (no file to install or to be swapped on disk).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
if(n EQUAL 0)
  message(FATAL_ERROR "embed_bytes: ${IN} is empty")
endif()
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by embed_bytes.cmake. Do not edit.\n#pragma once\ninline constexpr unsigned char ${NAME}[] = {\n${bytes}\n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
