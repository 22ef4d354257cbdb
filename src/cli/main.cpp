#include "cli/app.hpp"

int main(int argc, char** argv) { return thingsync::cli::main(argc, argv); }
