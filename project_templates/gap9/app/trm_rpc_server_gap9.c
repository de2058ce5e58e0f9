/* The shared RPC server (copied unchanged from project_templates/cortex_m/src/rpc_server.c at generation time),
 * entered from the GAP9 main as trm_rpc_main() after PMSIS is up. */
#define main trm_rpc_main
#include "rpc_server.c"
