# Windows test programs of the agent, run under wine64 by tests/wine/test_agent_wine.py:
# agent_client.exe drives signum-agent.exe through the client library, or writes raw frames.
add_executable(agent_client ${CMAKE_CURRENT_LIST_DIR}/agent_client.c)
target_link_libraries(agent_client PRIVATE signum-client advapi32)
target_include_directories(agent_client PRIVATE ${CMAKE_SOURCE_DIR}/agent-core/src)
