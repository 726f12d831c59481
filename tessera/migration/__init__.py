"""VMware to KVM migration: plans, readiness, and the cold pipeline as a durable task.

model.py      plans, VMs, phases, readiness findings: plain values, no I/O
disks.py      refusing hostile disks from their headers before any data is read
transfer.py   qemu-img streaming a disk from the datastore's HTTP interface, with progress
virtio.py     making the guest boot on virtio (virt-v2v-in-place, or the lab guest's step)
readiness.py  the per-VM report, from the source VM's config and the target host
service.py    plans stored, shown, edited while draft; start, cancel, resume, rollback
workflow.py   the phases, each a checkpointed step of the plan's task
"""
