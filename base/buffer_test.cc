#include "base/buffer.h"

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace monolake {
namespace {

static_assert(!std::is_copy_constructible_v<IoBuffer>);
static_assert(!std::is_copy_assignable_v<IoBuffer>);
static_assert(std::is_nothrow_move_constructible_v<IoBuffer>);
static_assert(std::is_nothrow_move_assignable_v<IoBuffer>);
static_assert(!std::is_copy_constructible_v<BufferChain>);
static_assert(std::is_nothrow_move_constructible_v<BufferChain>);
static_assert(std::is_nothrow_move_assignable_v<BufferChain>);

// Joins the iovecs a chain reports, checking each one is non-empty.
std::string JoinIovecs(const iovec* iov, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    EXPECT_GT(iov[i].iov_len, 0u) << "iovec " << i;
    out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  }
  return out;
}

class IoBufferDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

class BufferChainDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// ---------------------------------------------------------------------------------------------
// IoBuffer.

TEST(IoBufferTest, DefaultAllocatesNothing) {
  IoBuffer b;
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(b.writable_size(), 0u);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.view().empty());
  EXPECT_EQ(b.to_string(), "");
}

TEST(IoBufferTest, ZeroCapacityAllocatesNothing) {
  IoBuffer b(0);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.empty());
}

TEST(IoBufferTest, ExplicitCapacity) {
  IoBuffer b(100);
  EXPECT_EQ(b.capacity(), 100u);
  EXPECT_EQ(b.writable_size(), 100u);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
}

TEST(IoBufferTest, AppendEmptyDoesNotAllocate) {
  IoBuffer b;
  b.append("");
  b.append(std::string_view());
  b.append(nullptr, 0);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.empty());
}

TEST(IoBufferTest, ReserveZeroDoesNotAllocate) {
  IoBuffer b;
  b.reserve(0);
  EXPECT_EQ(b.capacity(), 0u);
}

TEST(IoBufferTest, AppendAndView) {
  IoBuffer b;
  b.append("hello");
  EXPECT_EQ(b.size(), 5u);
  EXPECT_FALSE(b.empty());
  EXPECT_GE(b.capacity(), 5u);
  EXPECT_EQ(b.view(), "hello");
  b.append(" world");
  EXPECT_EQ(b.view(), "hello world");
  EXPECT_EQ(b.to_string(), "hello world");
  EXPECT_EQ(std::string_view(b.data(), b.size()), "hello world");
  EXPECT_EQ(b.writable_size(), b.capacity() - b.size());
}

TEST(IoBufferTest, AppendRawPointer) {
  IoBuffer b;
  const unsigned char bytes[] = {0x00, 0xff, 0x10, 0x00};
  b.append(bytes, sizeof bytes);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(std::memcmp(b.data(), bytes, sizeof bytes), 0);
}

TEST(IoBufferTest, HoldsBinaryBytes) {
  const std::string bytes("a\0b\0\0c", 6);
  IoBuffer b;
  b.append(bytes);
  EXPECT_EQ(b.size(), 6u);
  EXPECT_EQ(b.to_string(), bytes);
}

TEST(IoBufferTest, AppendWithinCapacityDoesNotReallocate) {
  IoBuffer b(64);
  const char* base = b.write_ptr();
  b.append("abc");
  b.append("defg");
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(b.data(), base);
  EXPECT_EQ(b.view(), "abcdefg");
}

TEST(IoBufferTest, AppendGrowsGeometrically) {
  IoBuffer b;
  std::string model;
  size_t reallocations = 0;
  size_t last_capacity = 0;
  for (int i = 0; i < 100000; ++i) {
    const char c = static_cast<char>('a' + i % 26);
    b.append(&c, 1);
    model.push_back(c);
    if (b.capacity() != last_capacity) {
      if (last_capacity != 0) {
        EXPECT_GE(b.capacity(), 2 * last_capacity);
      }
      last_capacity = b.capacity();
      ++reallocations;
    }
  }
  EXPECT_EQ(b.view(), model);
  // Doubling: about log2(100000 / 512) + 1 growths, not one per append.
  EXPECT_LE(reallocations, 20u);
}

TEST(IoBufferTest, Consume) {
  IoBuffer b;
  b.append("abcdef");
  b.consume(0);
  EXPECT_EQ(b.view(), "abcdef");
  b.consume(2);
  EXPECT_EQ(b.view(), "cdef");
  EXPECT_EQ(b.size(), 4u);
  b.consume(3);
  EXPECT_EQ(b.view(), "f");
  b.consume(1);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.view(), "");
}

TEST(IoBufferTest, ConsumingEverythingRewindsTheWritePosition) {
  IoBuffer b(16);
  b.append("0123456789");
  EXPECT_EQ(b.writable_size(), 6u);
  b.consume(10);
  EXPECT_TRUE(b.empty());
  // The whole buffer is writable again without a reserve().
  EXPECT_EQ(b.writable_size(), 16u);
  EXPECT_EQ(b.capacity(), 16u);
}

TEST(IoBufferTest, AppendAfterPartialConsume) {
  IoBuffer b(64);
  b.append("header:");
  b.consume(3);
  b.append("value");
  EXPECT_EQ(b.view(), "der:value");
}

TEST(IoBufferTest, ReserveNoOpWhenEnoughWritable) {
  IoBuffer b(64);
  b.append("0123456789");
  const char* data = b.data();
  b.reserve(54);
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.view(), "0123456789");
}

TEST(IoBufferTest, ReserveCompactsWhenConsumedFrontMakesRoom) {
  IoBuffer b(16);
  b.append("0123456789abcdef");
  ASSERT_EQ(b.writable_size(), 0u);
  b.consume(10);
  const char* base = b.data() - 10;
  ASSERT_EQ(b.view(), "abcdef");
  ASSERT_EQ(b.writable_size(), 0u);

  b.reserve(8);
  // 10 bytes were free at the front: the readable bytes moved down, no new memory.
  EXPECT_EQ(b.capacity(), 16u);
  EXPECT_EQ(b.data(), base);
  EXPECT_EQ(b.view(), "abcdef");
  EXPECT_GE(b.writable_size(), 8u);
  EXPECT_EQ(b.writable_size(), 10u);
}

TEST(IoBufferTest, ReserveCompactsForExactFit) {
  IoBuffer b(16);
  b.append("0123456789abcdef");
  b.consume(10);
  b.reserve(10);
  EXPECT_EQ(b.capacity(), 16u);
  EXPECT_EQ(b.view(), "abcdef");
  b.append("ABCDEFGHIJ");
  EXPECT_EQ(b.capacity(), 16u);
  EXPECT_EQ(b.view(), "abcdefABCDEFGHIJ");
}

TEST(IoBufferTest, AppendCompactsInsteadOfGrowing) {
  IoBuffer b(16);
  b.append("0123456789abcdef");
  b.consume(12);
  b.append("0123456789");
  EXPECT_EQ(b.capacity(), 16u);
  EXPECT_EQ(b.view(), "cdef0123456789");
}

TEST(IoBufferTest, ReserveGrowsWhenCompactionIsNotEnough) {
  IoBuffer b(16);
  b.append("0123456789abcdef");
  b.consume(10);
  b.reserve(11);  // Only 10 bytes can be reclaimed.
  EXPECT_GT(b.capacity(), 16u);
  EXPECT_GE(b.writable_size(), 11u);
  EXPECT_EQ(b.view(), "abcdef");
}

TEST(IoBufferTest, ReserveGrowsWhenNothingConsumed) {
  IoBuffer b(16);
  b.append("0123456789abcdef");
  b.reserve(1);
  EXPECT_GE(b.capacity(), 32u);
  EXPECT_GE(b.writable_size(), 1u);
  EXPECT_EQ(b.view(), "0123456789abcdef");
}

TEST(IoBufferTest, ReserveLargeRequest) {
  IoBuffer b;
  b.append("xy");
  b.reserve(1 << 20);
  EXPECT_GE(b.writable_size(), size_t{1} << 20);
  EXPECT_EQ(b.view(), "xy");
}

TEST(IoBufferTest, ReserveOnEmptyBuffer) {
  IoBuffer b;
  b.reserve(10);
  EXPECT_GE(b.capacity(), 10u);
  EXPECT_GE(b.writable_size(), 10u);
  EXPECT_TRUE(b.empty());
}

TEST(IoBufferTest, CommitAfterWritingIntoWritePtr) {
  IoBuffer b;
  b.reserve(5);
  std::memcpy(b.write_ptr(), "abcde", 5);
  EXPECT_TRUE(b.empty());  // Not readable until committed.
  b.commit(5);
  EXPECT_EQ(b.view(), "abcde");

  // A short read commits less than was reserved.
  b.reserve(100);
  std::memcpy(b.write_ptr(), "fghij", 5);
  b.commit(3);
  EXPECT_EQ(b.view(), "abcdefgh");
  b.commit(0);
  EXPECT_EQ(b.view(), "abcdefgh");
}

TEST(IoBufferTest, CommitExactlyToCapacity) {
  IoBuffer b(8);
  std::memcpy(b.write_ptr(), "12345678", 8);
  b.commit(8);
  EXPECT_EQ(b.writable_size(), 0u);
  EXPECT_EQ(b.view(), "12345678");
}

TEST(IoBufferTest, WritePtrFollowsReadableBytes) {
  IoBuffer b(32);
  b.append("abc");
  EXPECT_EQ(b.write_ptr(), b.data() + 3);
  b.consume(1);
  EXPECT_EQ(b.write_ptr(), b.data() + 2);
}

TEST(IoBufferTest, ClearKeepsMemory) {
  IoBuffer b(32);
  b.append("abc");
  b.consume(1);
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.capacity(), 32u);
  EXPECT_EQ(b.writable_size(), 32u);
}

TEST(IoBufferTest, ReleaseFrees) {
  IoBuffer b;
  b.append("some bytes");
  b.consume(2);
  b.release();
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(b.writable_size(), 0u);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  // Usable again afterwards.
  b.append("again");
  EXPECT_EQ(b.view(), "again");
}

TEST(IoBufferTest, ReleaseOfEmptyBuffer) {
  IoBuffer b;
  b.release();
  EXPECT_EQ(b.capacity(), 0u);
}

TEST(IoBufferTest, MoveConstructionLeavesSourceEmpty) {
  IoBuffer a(64);
  a.append("0123456789");
  a.consume(2);
  const char* data = a.data();
  IoBuffer b(std::move(a));
  EXPECT_EQ(b.view(), "23456789");
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(b.data(), data);  // The memory moved, not the bytes.
  // NOLINTBEGIN(bugprone-use-after-move)
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.writable_size(), 0u);
  a.append("reuse");
  EXPECT_EQ(a.view(), "reuse");
  // NOLINTEND(bugprone-use-after-move)
}

TEST(IoBufferTest, MoveAssignmentLeavesSourceEmpty) {
  IoBuffer a(64);
  a.append("source");
  a.consume(1);
  IoBuffer b;
  b.append("old contents");
  const char* data = a.data();
  b = std::move(a);
  EXPECT_EQ(b.view(), "ource");
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(b.data(), data);
  // NOLINTBEGIN(bugprone-use-after-move)
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.writable_size(), 0u);
  a.append("reuse");
  EXPECT_EQ(a.view(), "reuse");
  // NOLINTEND(bugprone-use-after-move)
}

TEST(IoBufferTest, SelfMoveAssignmentKeepsContents) {
  IoBuffer b;
  b.append("self");
  IoBuffer& alias = b;
  b = std::move(alias);
  EXPECT_EQ(b.view(), "self");
}

TEST(IoBufferTest, MoveFromDefault) {
  IoBuffer a;
  IoBuffer b(std::move(a));
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.empty());
}

TEST(IoBufferTest, CopyOf) {
  std::string source = "copied bytes";
  IoBuffer b = IoBuffer::copy_of(source);
  EXPECT_EQ(b.view(), "copied bytes");
  EXPECT_EQ(b.capacity(), source.size());  // Exactly sized.
  EXPECT_EQ(b.writable_size(), 0u);
  EXPECT_NE(b.data(), source.data());
  source[0] = 'X';
  EXPECT_EQ(b.view(), "copied bytes");  // Independent of the source.
}

TEST(IoBufferTest, CopyOfEmptyAllocatesNothing) {
  IoBuffer b = IoBuffer::copy_of("");
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.empty());
}

TEST(IoBufferTest, CopyOfBinary) {
  const std::string bytes("\0\1\2\0", 4);
  IoBuffer b = IoBuffer::copy_of(bytes);
  EXPECT_EQ(b.to_string(), bytes);
}

TEST_F(IoBufferDeathTest, CommitPastCapacityAborts) {
  IoBuffer b(8);
  EXPECT_DEATH(b.commit(9), "IoBuffer::commit past capacity");
  b.append("12345");
  EXPECT_DEATH(b.commit(4), "IoBuffer::commit past capacity");
  IoBuffer empty;
  EXPECT_DEATH(empty.commit(1), "IoBuffer::commit past capacity");
}

TEST_F(IoBufferDeathTest, ConsumePastSizeAborts) {
  IoBuffer b;
  b.append("abc");
  EXPECT_DEATH(b.consume(4), "IoBuffer::consume past the readable bytes");
  IoBuffer empty;
  EXPECT_DEATH(empty.consume(1), "IoBuffer::consume past the readable bytes");
  // Capacity is not readable.
  IoBuffer sized(64);
  EXPECT_DEATH(sized.consume(1), "IoBuffer::consume past the readable bytes");
}

// ---------------------------------------------------------------------------------------------
// BufferChain.

TEST(BufferChainTest, DefaultIsEmpty) {
  BufferChain c;
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.buffer_count(), 0u);
  EXPECT_EQ(c.to_string(), "");
  iovec iov[4];
  EXPECT_EQ(c.fill_iovecs(iov, 4), 0u);
}

TEST(BufferChainTest, PushBackSkipsEmptyBuffers) {
  BufferChain c;
  c.push_back(IoBuffer());
  c.push_back(IoBuffer(64));  // Capacity but no readable bytes.
  c.push_back(IoBuffer::copy_of(""));
  c.append("");
  IoBuffer drained;
  drained.append("gone");
  drained.consume(4);
  c.push_back(std::move(drained));
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.buffer_count(), 0u);

  c.append("a");
  c.push_back(IoBuffer());
  c.append("b");
  EXPECT_EQ(c.buffer_count(), 2u);
  EXPECT_EQ(c.size(), 2u);
  iovec iov[4];
  ASSERT_EQ(c.fill_iovecs(iov, 4), 2u);
  EXPECT_EQ(JoinIovecs(iov, 2), "ab");
}

TEST(BufferChainTest, SizeAndBufferCount) {
  BufferChain c;
  c.append("abc");
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.buffer_count(), 1u);
  EXPECT_FALSE(c.empty());
  c.append("defg");
  EXPECT_EQ(c.size(), 7u);
  EXPECT_EQ(c.buffer_count(), 2u);
  IoBuffer b;
  b.append("hijkl");
  c.push_back(std::move(b));
  EXPECT_EQ(c.size(), 12u);
  EXPECT_EQ(c.buffer_count(), 3u);
  EXPECT_EQ(c.to_string(), "abcdefghijkl");
}

TEST(BufferChainTest, PushBackCountsOnlyReadableBytes) {
  IoBuffer b(64);
  b.append("skip:keep");
  b.consume(5);
  BufferChain c;
  c.push_back(std::move(b));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.to_string(), "keep");
}

TEST(BufferChainTest, FillIovecsInOrderWithoutCopying) {
  BufferChain c;
  std::vector<const char*> datas;
  for (std::string_view piece : {"GET / HTTP/1.1\r\n", "Host: x\r\n", "\r\n"}) {
    IoBuffer b = IoBuffer::copy_of(piece);
    datas.push_back(b.data());
    c.push_back(std::move(b));
  }
  iovec iov[8];
  ASSERT_EQ(c.fill_iovecs(iov, 8), 3u);
  EXPECT_EQ(iov[0].iov_base, datas[0]);
  EXPECT_EQ(iov[0].iov_len, 16u);
  EXPECT_EQ(iov[1].iov_base, datas[1]);
  EXPECT_EQ(iov[1].iov_len, 9u);
  EXPECT_EQ(iov[2].iov_base, datas[2]);
  EXPECT_EQ(iov[2].iov_len, 2u);
  EXPECT_EQ(JoinIovecs(iov, 3), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
}

TEST(BufferChainTest, FillIovecsRespectsMax) {
  BufferChain c;
  c.append("one");
  c.append("two");
  c.append("three");
  iovec iov[4];
  iovec sentinel;
  sentinel.iov_base = nullptr;
  sentinel.iov_len = 12345;
  for (iovec& v : iov) v = sentinel;

  ASSERT_EQ(c.fill_iovecs(iov, 2), 2u);
  EXPECT_EQ(JoinIovecs(iov, 2), "onetwo");
  EXPECT_EQ(iov[2].iov_base, nullptr);  // Not written past max.
  EXPECT_EQ(iov[2].iov_len, 12345u);

  EXPECT_EQ(c.fill_iovecs(iov, 0), 0u);
  ASSERT_EQ(c.fill_iovecs(iov, 1), 1u);
  EXPECT_EQ(JoinIovecs(iov, 1), "one");
  ASSERT_EQ(c.fill_iovecs(iov, 3), 3u);
  EXPECT_EQ(JoinIovecs(iov, 3), "onetwothree");
  EXPECT_EQ(iov[3].iov_len, 12345u);
}

TEST(BufferChainTest, FillIovecsAfterPartialConsume) {
  BufferChain c;
  c.append("abcdef");
  c.append("ghi");
  c.consume(4);
  iovec iov[4];
  ASSERT_EQ(c.fill_iovecs(iov, 4), 2u);
  EXPECT_EQ(iov[0].iov_len, 2u);
  EXPECT_EQ(JoinIovecs(iov, 2), "efghi");
}

TEST(BufferChainTest, ConsumePartialFirstBuffer) {
  BufferChain c;
  c.append("abcdef");
  c.append("ghi");
  c.consume(2);
  EXPECT_EQ(c.size(), 7u);
  EXPECT_EQ(c.buffer_count(), 2u);
  EXPECT_EQ(c.to_string(), "cdefghi");
}

TEST(BufferChainTest, ConsumeWholeFirstBuffer) {
  BufferChain c;
  c.append("abc");
  c.append("def");
  c.consume(3);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.buffer_count(), 1u);
  EXPECT_EQ(c.to_string(), "def");
}

TEST(BufferChainTest, ConsumeAcrossBufferBoundary) {
  BufferChain c;
  c.append("abc");
  c.append("def");
  c.append("ghi");
  c.consume(4);  // All of "abc" and one byte of "def".
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.buffer_count(), 2u);
  EXPECT_EQ(c.to_string(), "efghi");
  c.consume(4);  // The rest of "def" and two bytes of "ghi".
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.buffer_count(), 1u);
  EXPECT_EQ(c.to_string(), "i");
}

TEST(BufferChainTest, ConsumeSeveralWholeBuffers) {
  BufferChain c;
  c.append("ab");
  c.append("cd");
  c.append("ef");
  c.append("gh");
  c.consume(6);
  EXPECT_EQ(c.buffer_count(), 1u);
  EXPECT_EQ(c.to_string(), "gh");
}

TEST(BufferChainTest, ConsumeEverything) {
  BufferChain c;
  c.append("abc");
  c.append("def");
  c.consume(6);
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.buffer_count(), 0u);
  EXPECT_EQ(c.to_string(), "");
  iovec iov[2];
  EXPECT_EQ(c.fill_iovecs(iov, 2), 0u);
  // Usable again afterwards.
  c.append("more");
  EXPECT_EQ(c.buffer_count(), 1u);
  EXPECT_EQ(c.to_string(), "more");
}

TEST(BufferChainTest, ConsumeZero) {
  BufferChain c;
  c.consume(0);
  EXPECT_TRUE(c.empty());
  c.append("abc");
  c.consume(0);
  EXPECT_EQ(c.to_string(), "abc");
  EXPECT_EQ(c.buffer_count(), 1u);
}

TEST(BufferChainTest, ConsumeManyBuffersOneAtATime) {
  // Enough buffers to cross the lazy-erase threshold several times.
  BufferChain c;
  std::string model;
  for (int i = 0; i < 100; ++i) {
    std::string piece = "buffer" + std::to_string(i) + ";";
    c.append(piece);
    model += piece;
  }
  size_t count = 100;
  bool appended_tail = false;
  iovec iov[128];
  while (!c.empty()) {
    const size_t first_len = c.to_string().find(';') + 1;
    c.consume(first_len);
    model.erase(0, first_len);
    --count;
    ASSERT_EQ(c.buffer_count(), count);
    ASSERT_EQ(c.size(), model.size());
    ASSERT_EQ(c.to_string(), model);
    const size_t n = c.fill_iovecs(iov, 128);
    ASSERT_EQ(n, count);
    ASSERT_EQ(JoinIovecs(iov, n), model);
    if (count == 50 && !appended_tail) {
      // An append in the middle lands after the lazily kept consumed slots.
      c.append("tail;");
      model += "tail;";
      ++count;
      appended_tail = true;
    }
  }
  EXPECT_EQ(count, 0u);
}

TEST(BufferChainTest, InterleavedAppendAndConsume) {
  BufferChain c;
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    c.append("xy");
    c.append("z");
    c.consume(2);  // Leaves one more byte queued each round.
    stream += "xyz";
  }
  // 150 bytes written, 100 consumed: the last 50 of "xyzxyz...", which start mid-"xyz".
  EXPECT_EQ(c.size(), 50u);
  EXPECT_EQ(c.to_string(), stream.substr(100));
  EXPECT_EQ(c.to_string().substr(0, 4), "yzxy");
  // "y" (the rest of a partly consumed "xy"), "z", then 16 whole "xy" + "z" pairs.
  EXPECT_EQ(c.buffer_count(), 34u);
}

TEST(BufferChainTest, ToString) {
  BufferChain c;
  c.append("hello");
  c.append(", ");
  c.append(std::string("wor\0ld", 6));
  EXPECT_EQ(c.to_string(), std::string("hello, wor\0ld", 13));
  // to_string does not consume.
  EXPECT_EQ(c.size(), 13u);
}

TEST(BufferChainTest, Clear) {
  BufferChain c;
  c.append("abc");
  c.append("def");
  c.consume(4);
  c.clear();
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.buffer_count(), 0u);
  EXPECT_EQ(c.to_string(), "");
  iovec iov[2];
  EXPECT_EQ(c.fill_iovecs(iov, 2), 0u);
  c.append("new");
  EXPECT_EQ(c.to_string(), "new");
  EXPECT_EQ(c.buffer_count(), 1u);
}

TEST(BufferChainTest, MoveConstruction) {
  BufferChain a;
  a.append("abc");
  a.append("def");
  a.consume(4);
  BufferChain b(std::move(a));
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.buffer_count(), 1u);
  EXPECT_EQ(b.to_string(), "ef");
}

TEST(BufferChainTest, MovedFromChainIsEmptyAndReusable) {
  BufferChain a;
  a.append("abc");
  a.append("def");
  a.consume(4);  // Leaves a consumed buffer at the front.
  BufferChain b(std::move(a));
  // NOLINTBEGIN(bugprone-use-after-move)
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.buffer_count(), 0u);
  a.append("next");
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a.buffer_count(), 1u);
  EXPECT_EQ(a.to_string(), "next");
  iovec iov[2];
  ASSERT_EQ(a.fill_iovecs(iov, 2), 1u);
  EXPECT_EQ(JoinIovecs(iov, 1), "next");
  a.consume(4);
  EXPECT_TRUE(a.empty());
  // NOLINTEND(bugprone-use-after-move)
  EXPECT_EQ(b.to_string(), "ef");
}

TEST(BufferChainTest, MoveAssignment) {
  BufferChain a;
  a.append("abc");
  a.append("def");
  a.consume(4);
  BufferChain b;
  b.append("old");
  b = std::move(a);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.buffer_count(), 1u);
  EXPECT_EQ(b.to_string(), "ef");
  // NOLINTBEGIN(bugprone-use-after-move)
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.buffer_count(), 0u);
  a.append("again");
  EXPECT_EQ(a.to_string(), "again");
  EXPECT_EQ(a.size(), 5u);
  // NOLINTEND(bugprone-use-after-move)
}

TEST_F(BufferChainDeathTest, ConsumePastEndAborts) {
  BufferChain c;
  c.append("abc");
  EXPECT_DEATH(c.consume(4), "BufferChain::consume past the end");
  BufferChain empty;
  EXPECT_DEATH(empty.consume(1), "BufferChain::consume past the end");
}

// ---------------------------------------------------------------------------------------------
// Randomized: mirror operations against a std::string model.

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(byte(rng));
  return out;
}

size_t Uniform(std::mt19937& rng, size_t lo, size_t hi) {
  return std::uniform_int_distribution<size_t>(lo, hi)(rng);
}

TEST(IoBufferRandomTest, MatchesStringModel) {
  std::mt19937 rng(20240229);
  IoBuffer b;
  std::string model;
  for (int step = 0; step < 20000; ++step) {
    const size_t op = Uniform(rng, 0, 99);
    if (op < 40) {
      const std::string bytes = RandomBytes(rng, Uniform(rng, 0, 300));
      b.append(bytes);
      model += bytes;
    } else if (op < 75) {
      const size_t n = Uniform(rng, 0, model.size());
      b.consume(n);
      model.erase(0, n);
    } else if (op < 95) {
      // A read into write_ptr() that returns fewer bytes than were reserved.
      const size_t want = Uniform(rng, 0, 300);
      const size_t got = Uniform(rng, 0, want);
      b.reserve(want);
      ASSERT_GE(b.writable_size(), want);
      const std::string bytes = RandomBytes(rng, got);
      if (got) std::memcpy(b.write_ptr(), bytes.data(), got);
      b.commit(got);
      model += bytes;
    } else if (op < 98) {
      const size_t capacity = b.capacity();
      b.clear();
      model.clear();
      ASSERT_EQ(b.capacity(), capacity);
    } else {
      b.release();
      model.clear();
      ASSERT_EQ(b.capacity(), 0u);
    }
    ASSERT_EQ(b.size(), model.size()) << "step " << step;
    ASSERT_EQ(b.empty(), model.empty()) << "step " << step;
    ASSERT_EQ(b.view(), model) << "step " << step;
    ASSERT_LE(b.size() + b.writable_size(), b.capacity()) << "step " << step;
  }
}

TEST(BufferChainRandomTest, MatchesStringModel) {
  std::mt19937 rng(1234567);
  BufferChain c;
  std::string model;
  std::deque<std::string> pieces;  // The non-empty buffers the chain should hold.
  std::vector<iovec> iov(64);
  for (int step = 0; step < 20000; ++step) {
    const size_t op = Uniform(rng, 0, 99);
    if (op < 35) {
      const std::string bytes = RandomBytes(rng, Uniform(rng, 0, 40));
      c.append(bytes);
      model += bytes;
      if (!bytes.empty()) pieces.push_back(bytes);
    } else if (op < 50) {
      // A buffer with a consumed front and spare capacity.
      const std::string bytes = RandomBytes(rng, Uniform(rng, 0, 40));
      const size_t skip = Uniform(rng, 0, bytes.size());
      IoBuffer b(bytes.size() + Uniform(rng, 0, 16));
      b.append(bytes);
      b.consume(skip);
      c.push_back(std::move(b));
      model += bytes.substr(skip);
      if (skip < bytes.size()) pieces.push_back(bytes.substr(skip));
    } else if (op < 85) {
      // Mostly short writes, sometimes everything.
      const size_t n = Uniform(rng, 0, 9) == 0 ? model.size() : Uniform(rng, 0, model.size());
      c.consume(n);
      model.erase(0, n);
      for (size_t left = n; left > 0;) {
        const size_t take = std::min(left, pieces.front().size());
        pieces.front().erase(0, take);
        if (pieces.front().empty()) pieces.pop_front();
        left -= take;
      }
    } else if (op < 99) {
      const size_t max = Uniform(rng, 0, iov.size());
      const size_t count = c.fill_iovecs(iov.data(), max);
      ASSERT_EQ(count, std::min(max, pieces.size())) << "step " << step;
      for (size_t i = 0; i < count; ++i) {
        ASSERT_EQ(std::string_view(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len),
                  pieces[i])
            << "step " << step << " iovec " << i;
      }
    } else {
      c.clear();
      model.clear();
      pieces.clear();
    }
    ASSERT_EQ(c.size(), model.size()) << "step " << step;
    ASSERT_EQ(c.empty(), model.empty()) << "step " << step;
    ASSERT_EQ(c.buffer_count(), pieces.size()) << "step " << step;
    if (step % 16 == 0) {
      ASSERT_EQ(c.to_string(), model) << "step " << step;
    }
  }
  EXPECT_EQ(c.to_string(), model);
}

}  // namespace
}  // namespace monolake
