/*
 * sluice/pb.h — a faster protobuf-c unpacker and packer, drop-in
 * replacements for protobuf_c_message_unpack(), protobuf_c_message_pack()
 * and protobuf_c_message_get_packed_size().
 *
 * sl_pb_unpack() returns exactly what protobuf-c 1.4 would return for the
 * same descriptor, allocator and bytes: the same message laid out the same
 * way, each string, bytes buffer and the message itself allocated through
 * the allocator, so that protobuf_c_message_free_unpacked() (or the
 * generated <type>__free_unpacked()) frees it.  Only the cost differs.
 *
 * It decodes the common shapes itself in one pass over the bytes: singular
 * fields (proto3 fields and proto2 optional ones, has_ flags included) of
 * every scalar type, strings and bytes, in the wire type protobuf-c
 * expects for them.  Whatever else it meets — an unknown field, a repeated
 * field, a submessage, a oneof member, a message with required fields,
 * bytes that are malformed in any way or that protobuf-c might read
 * differently — it frees what it allocated and hands the original input to
 * protobuf_c_message_unpack(), so that the result is protobuf-c's by
 * construction.
 */
#ifndef SLUICE_PB_H
#define SLUICE_PB_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Decodes data[0..len) as a message of type desc, as
 * protobuf_c_message_unpack(desc, allocator, len, data) does.
 *
 * allocator: NULL means malloc() and free(), as for protobuf-c.  Every
 * piece of the result is allocated separately through it; the caller owns
 * the result and frees it with protobuf_c_message_free_unpacked(msg,
 * allocator), the same allocator.  For an input of at most 16 fields that
 * the fast path decodes, the allocator sees exactly the calls protobuf-c
 * would make, in the same order, so that a failure injected at the Nth
 * allocation fails both alike (with more fields protobuf-c also allocates
 * and frees scratch space for its scan).
 *
 * Returns NULL, having freed whatever it allocated, when the bytes do not
 * decode (protobuf-c's verdict) or an allocation fails.  Never blocks.
 *
 * desc must stay valid and unchanged for the life of the process, as the
 * descriptors protoc-c generates do: the first call for a descriptor
 * builds a small decoding plan for it (with calloc, never freed) that
 * later calls, from any thread, reuse; plans are kept by the address of
 * the descriptor.  The first 512 descriptors it sees get one; messages of
 * any others are decoded by protobuf-c, as when a plan cannot be
 * allocated.  Safe to call from many threads at once.
 */
ProtobufCMessage *sl_pb_unpack(const ProtobufCMessageDescriptor *desc,
    ProtobufCAllocator *allocator, size_t len, const uint8_t *data);

/*
 * Writes msg to out as protobuf_c_message_pack(msg, out) does, byte for
 * byte, and returns the number of bytes written.  out must hold
 * sl_pb_packed_size(msg) bytes (or protobuf-c's packed size: the same).
 *
 * A message whose fields are all singular scalars, strings and bytes (no
 * repeated field, submessage or oneof) and that carries no unknown fields
 * is written in one pass; any other is handed whole to protobuf-c.  Which
 * fields are written is protobuf-c's rule: a proto3 field when it is not
 * zero (a string or bytes neither NULL nor empty), a
 * proto2 optional one when its has_ flag is set (a string when it is
 * neither NULL nor the default's pointer), a required one always.
 * Needs no set-up and keeps no state: safe from any thread.
 */
size_t sl_pb_pack(const ProtobufCMessage *msg, uint8_t *out);

/* The bytes sl_pb_pack(msg, ...) writes, as
 * protobuf_c_message_get_packed_size(msg). */
size_t sl_pb_packed_size(const ProtobufCMessage *msg);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_PB_H */
