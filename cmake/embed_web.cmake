# The dashboard (web/ and lightweight-charts' standalone production build,
# which scripts/bootstrap fetches from npm) compiled into the binary:
# generates ${CMAKE_BINARY_DIR}/generated/web_assets.c, the table
# src/api/static.c serves. Every asset but index.html gets a content-hashed
# name (app.<sha256[0:12]>.js), so it can be cached for a year; index.html
# names them through {{app.js}}-style placeholders replaced here. Runs at
# configure time, again whenever one of the files changes.
set(AN_WEB_DIR ${CMAKE_SOURCE_DIR}/web)
set(AN_LWC ${AN_DEPS}/web/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js)
if(NOT EXISTS ${AN_LWC})
  message(FATAL_ERROR "lightweight-charts not found in ${AN_DEPS}/web: run scripts/bootstrap")
endif()

# name in index.html's placeholders | source file | Content-Type (all UTF-8 text)
set(AN_WEB_ASSETS
  "lightweight-charts.js|${AN_LWC}|text/javascript"
  "app.js|${AN_WEB_DIR}/app.js|text/javascript"
  "app.css|${AN_WEB_DIR}/app.css|text/css"
  "favicon.svg|${AN_WEB_DIR}/favicon.svg|image/svg+xml")

# bytes of TEXT as a C initializer list
function(an_web_bytes out text_file)
  file(READ ${text_file} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  set(${out} "${hex}" PARENT_SCOPE)
endfunction()

set(AN_WEB_C "/* generated from web/ by cmake/embed_web.cmake */\n#include \"api/static.h\"\n\n")
set(AN_WEB_TABLE "")
file(READ ${AN_WEB_DIR}/index.html AN_WEB_INDEX)
set(i 0)
foreach(entry ${AN_WEB_ASSETS})
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 src)
  list(GET parts 2 type)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(SHA256 ${src} sum)
  string(SUBSTRING ${sum} 0 12 sum)
  get_filename_component(stem ${name} NAME_WLE)
  get_filename_component(ext ${name} LAST_EXT)
  set(url "/assets/${stem}.${sum}${ext}")
  string(REPLACE "{{${name}}}" "${url}" AN_WEB_INDEX "${AN_WEB_INDEX}")
  an_web_bytes(bytes ${src})
  file(SIZE ${src} len)
  string(APPEND AN_WEB_C "static const unsigned char asset${i}[] = {${bytes} 0};\n")
  string(APPEND AN_WEB_TABLE "    {\"${url}\", \"${type}; charset=utf-8\", asset${i}, ${len}, 1},\n")
  math(EXPR i "${i} + 1")
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${AN_WEB_DIR}/index.html)
if(AN_WEB_INDEX MATCHES "{{[^}]*}}")
  message(FATAL_ERROR "web/index.html names an asset cmake/embed_web.cmake does not know: ${CMAKE_MATCH_0}")
endif()
file(WRITE ${CMAKE_BINARY_DIR}/generated/web_index.html "${AN_WEB_INDEX}")
an_web_bytes(bytes ${CMAKE_BINARY_DIR}/generated/web_index.html)
file(SIZE ${CMAKE_BINARY_DIR}/generated/web_index.html len)
string(APPEND AN_WEB_C "static const unsigned char index_html[] = {${bytes} 0};\n\n"
  "const an_static_file an_static_files[] = {\n"
  "    {\"/\", \"text/html; charset=utf-8\", index_html, ${len}, 0},\n${AN_WEB_TABLE}};\n"
  "const size_t an_static_nfiles = sizeof an_static_files / sizeof an_static_files[0];\n")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/generated/web_assets.c CONTENT "${AN_WEB_C}" @ONLY)
