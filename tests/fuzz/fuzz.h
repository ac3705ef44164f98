/*
 * The libFuzzer entry point every fuzz_<target>.c defines; replay_main.c calls it for each
 * corpus file so that every corpus also runs as an ordinary regression test.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run loudly when an invariant breaks: libFuzzer and the replay both see a crash. */
#define FUZZ_CHECK(cond)                  \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)
