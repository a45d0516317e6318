# The one way a Python test is registered with ctest.
#
# ca_add_python_test(NAME <name> FILE <file.py> LABELS <label>... TIMEOUT <seconds>
#                    [RUN_SERIAL])
#   One test: Debian's python3 (CA_PYTHON) runs the file with CA_TEST_ENV; exit code 77
#   means skipped (a missing prerequisite, or not root for the lab).
#
# ca_add_python_tests(<glob> LABELS <label>... TIMEOUT <seconds> [RUN_SERIAL])
#   Every file the glob matches, each through ca_add_python_test(). The test's name is the
#   file's name without .py, "_" replaced by "-" (test_mqtt_tls.py: test-mqtt-tls). A file
#   may override the name, the labels and the timeout on a line of its own:
#     # ctest: name=lab-sms labels=lab;slow timeout=300
#   LABELS and TIMEOUT here are the defaults for the files that say nothing.

function(ca_add_python_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "RUN_SERIAL" "NAME;FILE;TIMEOUT" "LABELS")
  if(NOT arg_NAME OR NOT arg_FILE OR NOT arg_LABELS OR NOT arg_TIMEOUT)
    message(FATAL_ERROR "ca_add_python_test: NAME, FILE, LABELS and TIMEOUT are required")
  endif()
  add_test(NAME ${arg_NAME} COMMAND ${CA_PYTHON} ${arg_FILE})
  set_tests_properties(${arg_NAME} PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT}
                       SKIP_RETURN_CODE 77 ENVIRONMENT "${CA_TEST_ENV}")
  if(arg_RUN_SERIAL)
    set_tests_properties(${arg_NAME} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

function(ca_add_python_tests pattern)
  cmake_parse_arguments(PARSE_ARGV 1 arg "RUN_SERIAL" "TIMEOUT" "LABELS")
  file(GLOB files CONFIGURE_DEPENDS ${pattern})
  if(NOT files)
    message(FATAL_ERROR "ca_add_python_tests: no file matches ${pattern}")
  endif()
  set(serial)
  if(arg_RUN_SERIAL)
    set(serial RUN_SERIAL)
  endif()
  foreach(src ${files})
    get_filename_component(name ${src} NAME_WE)
    string(REPLACE "_" "-" name ${name})
    set(labels ${arg_LABELS})
    set(timeout ${arg_TIMEOUT})
    file(STRINGS ${src} meta REGEX "^# ctest: ")
    if(meta)
      if(meta MATCHES "name=([^ ]+)")
        set(name ${CMAKE_MATCH_1})
      endif()
      if(meta MATCHES "labels=([^ ]+)")
        set(labels ${CMAKE_MATCH_1})
      endif()
      if(meta MATCHES "timeout=([0-9]+)")
        set(timeout ${CMAKE_MATCH_1})
      endif()
    endif()
    ca_add_python_test(NAME ${name} FILE ${src} LABELS ${labels} TIMEOUT ${timeout} ${serial})
  endforeach()
endfunction()
