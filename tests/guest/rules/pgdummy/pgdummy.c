// SPDX-License-Identifier: GPL-2.0
/*
 * pgdummy: a module that does nothing. The guest's rule checks load it so
 * that "Kernel Module Loaded" sees a load that succeeds (the rule ignores
 * failed attempts, which the checks use as the benign neighbour).
 */
#include <linux/module.h>

static int __init pgdummy_init(void)
{
	return 0;
}

static void __exit pgdummy_exit(void)
{
}

module_init(pgdummy_init);
module_exit(pgdummy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Peregrine lab: a module whose only job is to be loaded");
